"""Uploaded files → plain RGB PIL images, or an ``ImageInputError`` that says what to do.

We decode uploads ourselves (the image component hands us the file path unopened) so that every
failure has a useful message: not an image, damaged, too many pixels (checked from the header,
before decoding: a decompression-bomb guard), too small. RGBA/LA/palette transparency goes onto
white, 16-bit and float images are scaled to 8 bits, EXIF rotation is applied, and large images
are downscaled so the models never see more than ``MAX_SIDE`` pixels a side."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from occ_core.errors import OccError

MAX_PIXELS = 40_000_000   # refuse before decoding: 40 MP is far beyond any phone photo's need here
MAX_SIDE = 1024           # downscale above this; the 3D branch works at 128 px, the VLM at 80–336 px
MIN_SIDE = 16
MAX_FILE_MB = 20          # the app's upload cap (gradio's max_file_size)


class ImageInputError(OccError):
    """An uploaded file is not a usable image."""


def load_image(value) -> Image.Image:
    """A file path, PIL image or array → an RGB PIL image no larger than ``MAX_SIDE`` a side."""
    if value is None or (isinstance(value, str) and not value):
        raise ImageInputError("no image yet: upload a photo of a hand holding an object, or pick an example")
    if isinstance(value, np.ndarray):
        value = _from_array(value)
    image = value if isinstance(value, Image.Image) else _open(Path(value))
    _check_size(image)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = ImageOps.exif_transpose(image)  # decodes the pixels
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageInputError(f"the image file is damaged or truncated ({exc}); re-save it as JPEG or PNG") from None
    rgb = to_rgb(image)
    if max(rgb.size) > MAX_SIDE:
        rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    return rgb


def _open(path: Path) -> Image.Image:
    if not path.is_file():
        raise ImageInputError(f"the uploaded file {path.name!r} is missing; upload it again")
    if path.stat().st_size > MAX_FILE_MB * 1024 * 1024:
        raise ImageInputError(f"the file is {path.stat().st_size / 2**20:.0f} MB; the limit is {MAX_FILE_MB} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError:
        raise ImageInputError(f"the image has too many pixels (limit {MAX_PIXELS / 1e6:.0f} megapixels); "
                              "downscale it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageInputError(f"{path.name!r} is not an image this app can read; upload a JPEG, PNG or WebP photo") from None
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # animations: the first frame
    return image


def _check_size(image: Image.Image) -> None:
    w, h = image.size
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"the image is {w}×{h} = {w * h / 1e6:.0f} megapixels; the limit is "
                              f"{MAX_PIXELS / 1e6:.0f} — downscale it first")
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"the image is only {w}×{h} pixels; use one at least {MIN_SIDE} pixels a side")


def _from_array(a: np.ndarray) -> Image.Image:
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageInputError(f"an array of shape {a.shape} is not an image (expected H×W, H×W×3 or H×W×4)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        a = _to_uint8(a.astype(np.float64), 65535.0 if a.dtype == np.uint16 else None)
    return Image.fromarray(a)


def _to_uint8(a: np.ndarray, full_scale: float | None) -> np.ndarray:
    """16-bit photos use the full range (÷257); other high-depth data (float, 32-bit) is min–max scaled."""
    if full_scale is None:
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = (a - lo) / (hi - lo if hi > lo else 1.0)
    else:
        a = a / full_scale
    return np.clip(np.nan_to_num(a) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode → RGB: transparency over white, high bit depth scaled to 8 bits."""
    mode = image.mode
    if mode.startswith("I;16"):
        return Image.fromarray(_to_uint8(np.asarray(image, dtype=np.float64), 65535.0)).convert("RGB")
    if mode in ("I", "F"):
        return Image.fromarray(_to_uint8(np.asarray(image, dtype=np.float64), None)).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")
