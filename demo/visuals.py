"""Pictures, tables and plots made from results: the joints-and-masks overlay, plot data frames,
and the short Markdown summaries the app shows. No model code here."""
from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from occ_core.scenes.preview import draw_joints

# the same colours as the data set's contact sheets (occ_core.scenes.preview.mask_image)
HAND, VISIBLE, OCCLUDED = (60, 110, 255), (240, 220, 40), (200, 40, 40)
RENDER_WHITE = 250  # the 3D branch renders over white; brighter than this counts as background


def amodal_mask(rec, size: tuple[int, int]) -> np.ndarray:
    """The whole object's silhouette in the input image: the reconstruction's own ``amodal_mask``
    when it has one, else the mesh's render from the input camera (rendered on a square that pads
    the input, like the 3D branch does), which is exactly the predicted amodal extent."""
    w, h = size
    own = getattr(rec, "amodal_mask", None)
    if own is not None:
        return np.asarray(own, bool)
    side = max(w, h)
    render = np.asarray(rec.render.convert("RGB").resize((side, side), Image.NEAREST))
    silhouette = (render < RENDER_WHITE).any(-1)
    top, left = (side - h) // 2, (side - w) // 2
    return silhouette[top:top + h, left:left + w] | np.asarray(rec.object_mask, bool)


def render_pair(rec) -> Image.Image:
    """The render from the input camera and, beside it, the same render framed on the object: what
    the VLM's second view (v2) encodes. A thin grey gap between them."""
    left = rec.render.convert("RGB")
    right = (rec.object_view or rec.render).convert("RGB").resize(left.size, Image.BICUBIC)
    pair = Image.new("RGB", (2 * left.width + 4, left.height), (200, 200, 200))
    pair.paste(left, (0, 0))
    pair.paste(right, (left.width + 4, 0))
    return pair


def overlay(image: Image.Image, rec) -> Image.Image:
    """The photo with the predicted masks blended in (hand blue, visible object yellow, occluded part
    of the object red) and the 21 predicted hand joints drawn on top."""
    rgb = np.asarray(image.convert("RGB")).astype(np.float32)
    hand = np.asarray(rec.hand_mask, bool)
    visible = np.asarray(rec.object_mask, bool)
    occluded = amodal_mask(rec, image.size) & ~visible
    tint = rgb.copy()
    for mask, color in ((occluded, OCCLUDED), (visible, VISIBLE), (hand, HAND)):
        if mask.shape == rgb.shape[:2]:
            tint[mask] = color
    blended = (0.45 * rgb + 0.55 * tint).astype(np.uint8)
    radius = max(2, round(min(image.size) / 100))
    return draw_joints(blended, np.asarray(rec.joints_2d), radius=radius)


def reconstruction_summary(rec, example: dict | None, resolution: int | None) -> str:
    mesh = rec.mesh
    t = rec.timings or {}
    lines = [f"**Estimated occlusion ratio: {rec.occlusion_ratio:.2f}**"
             + (f" (true: {example['occlusion_ratio']:.2f})" if example else ""),
             f"Mesh: {len(mesh.vertices):,} vertices, {len(mesh.faces):,} faces"
             + (f", marching cubes at {resolution}³" if resolution else "")]
    if t.get("total") is not None:
        stages = ", ".join(f"{k.replace('_', ' ')} {v:.2f}s" for k, v in t.items()
                           if k != "total" and isinstance(v, float))
        lines.append(f"Time: {t['total']:.2f} s ({stages})")
    return "  \n".join(lines)


def example_summary(example: dict | None) -> str:
    if example is None:
        return "Your own image: no ground truth known."
    a = example["attributes"]
    attrs = ", ".join(f"{k} **{'yes' if a[k] else 'no'}**" for k in ("round", "long", "thin"))
    return (f"Bundled example — true answers: **{example['category']}**; {attrs}; "
            f"occlusion {example['occlusion_ratio']:.2f} ({example['occlusion_level']})")


def answer_status(info, seconds: float, tta=None) -> str:
    parts = [f"α used {info.alpha:.2f}", f"{seconds:.2f} s"]
    if tta is not None:
        parts.append(f"TTA: {len(tta.trace)} steps in {tta.seconds:.2f} s; without it: “{tta.baseline}”")
    text = " · ".join(parts)
    if tta is not None and getattr(tta, "note", None):
        text += f"  \nTTA: {tta.note}"
    if info.fallback:
        text += f"  \n⚠️ {info.note}"
    return text


def sweep_frame(sweep) -> pd.DataFrame:
    """Long format for one line per score: confidence and (yes/no questions) P(yes), both in [0, 1]."""
    rows = []
    for p in sweep.points:
        rows.append({"alpha": p.alpha, "score": p.confidence, "series": "confidence in the answer"})
        if p.p_yes is not None:
            rows.append({"alpha": p.alpha, "score": p.p_yes, "series": "P(yes)"})
    return pd.DataFrame(rows, columns=["alpha", "score", "series"])


def sweep_table(sweep) -> pd.DataFrame:
    return pd.DataFrame([{"α": p.alpha, "answer": p.answer, "log p(answer)": round(p.logprob, 3),
                          "confidence": round(p.confidence, 3),
                          "P(yes)": None if p.p_yes is None else round(p.p_yes, 3)} for p in sweep.points],
                        columns=["α", "answer", "log p(answer)", "confidence", "P(yes)"])


def reward_frame(trace: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"step": int(s["step"]), "mean reward": float(s["mean_reward"])} for s in trace],
                        columns=["step", "mean reward"])
