"""A picture of reconstructions: per view the input, the render from the input camera, the render
from the canonical view, and the ground-truth occlusion-free image, with the occlusion ratio."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from occ_core.errors import ReconstructionError
from occ_core.recon.evaluate import OCCLUSION_BINS
from occ_core.recon.infer import Reconstructor
from occ_core.scenes.dataset import SceneDataset
from occ_core.scenes.preview import draw_joints


def pick_views_by_occlusion(ds: SceneDataset, limit: int = 200) -> list[int]:
    """One view per occlusion bin (<0.3, 0.3–0.5, ≥0.5): the first of each among ``limit`` views."""
    picked = []
    for _, lo, hi in OCCLUSION_BINS:
        for i in range(min(limit, len(ds))):
            ratio = ds[i]["meta"]["occlusion_ratio"]
            if lo <= ratio < hi and i not in picked:
                picked.append(i)
                break
    return picked


def reconstruction_figure(rec: Reconstructor, ds: SceneDataset, indices: list[int], out: str | Path) -> Path:
    rows = []
    for i in indices:
        item = ds[i]
        size = item["image"].shape[0]
        try:
            r = rec.reconstruct(item["image"])
            tiles = [draw_joints(item["image"], r.joints_2d), r.render.resize((size, size)),
                     r.canonical_render.resize((size, size))]
        except ReconstructionError:
            blank = Image.new("RGB", (size, size), (255, 255, 255))
            tiles = [Image.fromarray(item["image"]), blank, blank]
        tiles.append(Image.fromarray(item["occlusion_free"]))
        label = f"{item['meta']['category']}  occlusion {item['meta']['occlusion_ratio']:.2f}"
        rows.append((tiles, label))
    size = rows[0][0][0].width
    sheet = Image.new("RGB", (4 * (size + 2), len(rows) * (size + 16)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for r_i, (tiles, label) in enumerate(rows):
        y = r_i * (size + 16)
        d.text((2, y + 2), label, fill=(0, 0, 0))
        for c_i, t in enumerate(tiles):
            sheet.paste(t, (c_i * (size + 2), y + 14))
    out = Path(out)
    sheet.save(out)
    return out
