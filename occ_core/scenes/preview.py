"""A contact sheet of a data set: per view the occluded image with the hand joints drawn, the
occlusion-free image, the masks, and the labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from occ_core.scenes.dataset import SceneDataset
from occ_core.scenes.hand import FINGERS

_FINGER_COLORS = ((255, 80, 80), (255, 200, 0), (60, 220, 60), (60, 160, 255), (220, 80, 255))


def draw_joints(image: np.ndarray, joints_2d: np.ndarray, radius: int = 2) -> Image.Image:
    """The image with the 21 joints and bones drawn, one colour per finger."""
    im = Image.fromarray(image).copy()
    d = ImageDraw.Draw(im)
    j = np.asarray(joints_2d)
    for f, color in zip(FINGERS, _FINGER_COLORS):
        chain = [0, *f]
        d.line([tuple(j[k]) for k in chain], fill=color, width=1)
        for k in f:
            d.ellipse([j[k][0] - radius, j[k][1] - radius, j[k][0] + radius, j[k][1] + radius], fill=color)
    return im


def mask_image(item: dict) -> np.ndarray:
    """Masks as colours: amodal object dark red, visible object yellow, hand blue."""
    amodal = item["amodal_mask"]
    out = np.zeros(amodal.shape + (3,), np.uint8)
    out[amodal] = (120, 30, 30)
    if "visible_mask" in item:
        out[item["visible_mask"]] = (240, 220, 40)
        out[item["hand_mask"]] = (60, 110, 255)
    return out


def contact_sheet(root: str | Path, out: str | Path, split: str = "train", rows: int = 8) -> Path:
    ds = SceneDataset(root, split, with_depth=False)
    step = max(1, len(ds) // rows)
    tiles = []
    font = ImageFont.load_default()
    for i in range(0, min(len(ds), step * rows), step):
        item = ds[i]
        meta = item["meta"] or {}
        size = item["occlusion_free"].shape[0]
        occluded = item["image"] if item["image"] is not None else np.zeros_like(item["occlusion_free"])
        with_joints = draw_joints(occluded, meta["joints_2d"]) if "joints_2d" in meta else Image.fromarray(occluded)
        label = Image.new("RGB", (160, max(size, 100)), (255, 255, 255))
        d = ImageDraw.Draw(label)
        attrs = meta.get("attributes", {})
        lines = [item["id"], f"{meta.get('category', '?')}",
                 *(f"{k}: {'yes' if v else 'no'}" for k, v in attrs.items()),
                 f"occlusion {meta['occlusion_ratio']:.2f}" if "occlusion_ratio" in meta else ""]
        for k, line in enumerate(lines):
            d.text((4, 4 + 13 * k), line, fill=(0, 0, 0), font=font)
        row = [with_joints, Image.fromarray(item["occlusion_free"]), Image.fromarray(mask_image(item)), label]
        tiles.append(row)
    widths = [t.width for t in tiles[0]]
    row_h = max(t.height for t in tiles[0])
    sheet = Image.new("RGB", (sum(widths) + 2 * len(widths), len(tiles) * (row_h + 2)), (40, 40, 40))
    for r, row in enumerate(tiles):
        x = 0
        for t in row:
            sheet.paste(t, (x, r * (row_h + 2)))
            x += t.width + 2
    out = Path(out)
    sheet.save(out)
    return out
