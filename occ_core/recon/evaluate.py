"""Evaluate the 3D branch against exact ground truth (``python -m occ_core eval recon``).

Metrics per view, in the object-normalised frame: the input camera's frame divided by the object's
radius (half its bounding-box diagonal), with the predicted mesh moved so that the predicted object
centre sits on the true one — shape is scored apart from placement, and the centre error (mostly
depth, which a single view leaves uncertain) is reported on its own:
- Chamfer distance: mean nearest-neighbour distance both ways between 10,000 surface samples each;
- F-score at τ = 0.05 and τ = 0.1 (5 % and 10 % of the radius);
- centre error: distance between predicted and true object centre (normalised units);
- silhouette IoU of the input-view render against the ground-truth amodal (occlusion-free) mask;
- mean hand-joint error, normalised and in millimetres (scaled by the true radius).
Each is reported overall and by occlusion bin (<0.3, 0.3–0.5, ≥0.5).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree
from tqdm import tqdm

from occ_core.errors import ReconstructionError
from occ_core.geometry import Camera
from occ_core.recon.infer import Reconstructor, render_mesh, input_camera
from occ_core.scenes.dataset import SceneDataset

OCCLUSION_BINS = (("<0.3", 0.0, 0.3), ("0.3–0.5", 0.3, 0.5), ("≥0.5", 0.5, 1.01))
TAUS = (0.05, 0.1)
N_SAMPLES = 10000


def occlusion_bin(ratio: float) -> str:
    for name, lo, hi in OCCLUSION_BINS:
        if lo <= ratio < hi:
            return name
    return OCCLUSION_BINS[-1][0]


def surface_metrics(pred: trimesh.Trimesh, gt: trimesh.Trimesh, seed: int = 0) -> dict:
    """Chamfer distance and F-scores between two meshes (same units)."""
    a = np.asarray(pred.sample(N_SAMPLES, seed=seed))
    b = np.asarray(gt.sample(N_SAMPLES, seed=seed + 1))
    d_ab, _ = cKDTree(b).query(a)
    d_ba, _ = cKDTree(a).query(b)
    out = {"chamfer": float(d_ab.mean() + d_ba.mean())}
    for tau in TAUS:
        precision, recall = float((d_ab < tau).mean()), float((d_ba < tau).mean())
        out[f"fscore@{tau}"] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return out


def gt_mesh_in_view(ds: SceneDataset, i: int) -> trimesh.Trimesh:
    meta = ds[i]["meta"]
    gt = ds.ground_truth(ds.scene_id(i))
    cam = Camera.from_dict(meta["camera"])
    mesh = trimesh.load(ds.root / "gt3d" / f"{ds.scene_id(i)}.ply", process=False)
    mesh.apply_transform(cam.extrinsic)
    mesh.apply_scale(1.0 / gt["radius"])
    return mesh


def evaluate_view(rec: Reconstructor, ds: SceneDataset, i: int) -> dict:
    item = ds[i]
    meta = item["meta"]
    r = ds.ground_truth(ds.scene_id(i))["radius"]
    row = {"id": item["id"], "occlusion": meta["occlusion_ratio"], "category": meta["category"]}
    try:
        out = rec.reconstruct(item["image"])
    except ReconstructionError as exc:
        return {**row, "failed": str(exc), "chamfer": float("nan"), "center_error": float("nan"),
                **{f"fscore@{t}": 0.0 for t in TAUS},
                "silhouette_iou": 0.0, "joint_error": float("nan"), "joint_error_mm": float("nan")}
    true_center = Camera.from_dict(meta["camera"]).t / r
    aligned = out.mesh.copy()
    aligned.apply_translation(true_center - out.center)
    row.update(surface_metrics(aligned, gt_mesh_in_view(ds, i)))
    row["center_error"] = float(np.linalg.norm(out.center - true_center))
    size = item["amodal_mask"].shape[0]
    _, alpha = render_mesh(out.mesh, input_camera(size))
    sil, amodal = alpha > 0.5, item["amodal_mask"]
    row["silhouette_iou"] = float((sil & amodal).sum() / max(int((sil | amodal).sum()), 1))
    err = np.linalg.norm(out.joints_3d - np.asarray(meta["joints_3d_cam"]) / r, axis=1).mean()
    row.update(joint_error=float(err), joint_error_mm=float(err * r * 1000), seconds=out.timings["total"])
    return row


METRICS = ("chamfer", "fscore@0.05", "fscore@0.1", "center_error", "silhouette_iou", "joint_error", "joint_error_mm")


def summarise(rows: list[dict]) -> dict:
    def agg(sel):
        out = {"views": len(sel), "failed": sum("failed" in r for r in sel)}
        for m in METRICS:
            vals = np.array([r[m] for r in sel], float)
            out[m] = float(np.nanmean(vals)) if len(sel) and np.isfinite(vals).any() else float("nan")
        return out
    table = {"overall": agg(rows)}
    for name, lo, hi in OCCLUSION_BINS:
        table[f"occlusion {name}"] = agg([r for r in rows if lo <= r["occlusion"] < hi])
    return table


def markdown_table(tables: dict[str, dict]) -> str:
    """Rows: model × (overall, occlusion bins); columns: the metrics."""
    head = ("| model | subset | views | Chamfer ↓ | F@0.05 ↑ | F@0.1 ↑ | centre err ↓ | silhouette IoU ↑ | "
            "joint err (norm.) ↓ | joint err (mm) ↓ |")
    lines = [head, "|" + "---|" * 10]
    for model, table in tables.items():
        for subset, m in table.items():
            lines.append(f"| {model} | {subset} | {m['views']} | {m['chamfer']:.4f} | {m['fscore@0.05']:.3f} | "
                         f"{m['fscore@0.1']:.3f} | {m['center_error']:.3f} | {m['silhouette_iou']:.3f} | {m['joint_error']:.3f} | {m['joint_error_mm']:.1f} |")
    return "\n".join(lines)


def evaluate_recon(checkpoints: dict[str, str | Path], data: str | Path, split: str = "test", out: str | Path | None = None,
                   limit: int | None = None, resolution: int = 64, progress: bool = True) -> dict:
    """Evaluate one or more checkpoints (name → folder) on a split; writes table.md and metrics.json."""
    ds = SceneDataset(data, split)
    n = len(ds) if limit is None else min(limit, len(ds))
    tables, per_view = {}, {}
    for name, path in checkpoints.items():
        rec = Reconstructor.from_pretrained(path, resolution=resolution)
        rows = [evaluate_view(rec, ds, i) for i in tqdm(range(n), desc=f"eval {name}", disable=not progress)]
        tables[name], per_view[name] = summarise(rows), rows
    md = markdown_table(tables)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(md + "\n")
        (out / "metrics.json").write_text(json.dumps({"tables": tables, "views": per_view}, indent=1))
    return {"tables": tables, "markdown": md}
