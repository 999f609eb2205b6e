"""The second view's framing: the object alone, cropped square around it and scaled to fill the image.

The 3D branch's render is taken from the input camera, so a small or distant object covers a few
dozen pixels and, after the tiny tower's 80-px resize, two or three patches. Framing the render on
the object (which only the 3D branch can do: the photo's object is partly hidden) gives the tower
the shape at full resolution: the tiny tower's val category accuracy on object-only images, 15
epochs into the same warm-up, was 0.46 framed against 0.36 unframed. The same function frames the
ground-truth occlusion-free images used while training, and the 3D branch's renders at test time."""
from __future__ import annotations

import numpy as np
from PIL import Image

MARGIN = 0.1  # of the object's larger side, on each side


def object_box(mask: np.ndarray, margin: float = MARGIN) -> tuple[int, int, int, int] | None:
    """Square box (x0, y0, x1, y1), end exclusive, around the mask's pixels with a margin; it may
    reach outside the image. None for an empty mask."""
    ys, xs = np.nonzero(np.asarray(mask))
    if len(ys) == 0:
        return None
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    half = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) * (0.5 + margin)
    half = max(half, 4.0)  # a speck of a few pixels is not blown up past 8 px
    return int(np.floor(cx - half)), int(np.floor(cy - half)), int(np.ceil(cx + half)), int(np.ceil(cy + half))


def crop_to_object(image: Image.Image | np.ndarray, mask: np.ndarray, margin: float = MARGIN) -> Image.Image:
    """``image`` cropped to the object's square box (edge pixels repeated where the box leaves the
    image) and resized back to the image's size; unchanged when the mask is empty."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    pil = pil.convert("RGB")
    mask = np.asarray(mask)
    if mask.shape != (pil.height, pil.width):
        raise ValueError(f"mask {mask.shape} does not match the image {pil.height}×{pil.width}")
    box = object_box(mask, margin)
    if box is None:
        return pil
    x0, y0, x1, y1 = box
    pixels = np.asarray(pil)
    rows = np.clip(np.arange(y0, y1), 0, pil.height - 1)
    cols = np.clip(np.arange(x0, x1), 0, pil.width - 1)
    crop = Image.fromarray(pixels[rows][:, cols])
    return crop.resize(pil.size, Image.BICUBIC)
