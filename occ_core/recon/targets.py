"""Training targets of the 3D branch, made once per data set split from the exact ground truth.

Per view, in the normalised camera frame (camera frame / object radius): query points near the
surface and uniform in the box around the object with their exact SDF, surface points with their
colour, the hand joints, the object centre, and 1/4-resolution masks.
"""
from __future__ import annotations

import numpy as np
import trimesh
from tqdm import tqdm

from occ_core.geometry import Camera
from occ_core.scenes.dataset import SceneDataset


def view_targets(ds: SceneDataset, i: int, rng: np.random.Generator, n_near: int = 768, n_uniform: int = 256,
                 n_surface: int = 256, box: float = 1.15, mesh_cache: dict | None = None) -> dict:
    item = ds[i]
    meta = item["meta"]
    scene_id = ds.scene_id(i)
    gt = ds.ground_truth(scene_id)
    cam = Camera.from_dict(meta["camera"])
    r = float(gt["radius"])
    if mesh_cache is not None and scene_id in mesh_cache:
        mesh = mesh_cache[scene_id]
    else:
        mesh = trimesh.load(ds.root / "gt3d" / f"{scene_id}.ply", process=False)
        if mesh_cache is not None:
            mesh_cache.clear()  # views of a scene are consecutive: keep one mesh
            mesh_cache[scene_id] = mesh
    surface = np.asarray(mesh.sample(n_near + n_surface, seed=int(rng.integers(2**31))))
    sigma = np.where(np.arange(n_near) < n_near // 2, 0.01, 0.05)[:, None] * r
    near = surface[:n_near] + rng.normal(size=(n_near, 3)) * sigma
    center_cam = cam.t / r  # the object frame's origin is its bounding-box centre
    uniform_cam = center_cam + rng.uniform(-box, box, (n_uniform, 3))
    uniform_world = cam.R.T @ (uniform_cam * r - cam.t).T
    pts_world = np.concatenate([near, uniform_world.T])
    sdf = gt["shape"].sdf(pts_world) / r
    surf = surface[n_near:]
    S = item["image"].shape[0]
    masks = np.stack([item["hand_mask"], item["visible_mask"], item["amodal_mask"]]).astype(np.float32)
    seg = masks.reshape(3, S // 4, 4, S // 4, 4).mean((2, 4))
    return {
        "image": item["image"],
        "K": cam.K.astype(np.float32),
        "points": (cam.world_to_camera(pts_world) / r).astype(np.float32),
        "sdf": sdf.astype(np.float32),
        "surface": (cam.world_to_camera(surf) / r).astype(np.float32),
        "surface_rgb": gt["shape"].colors(surf).astype(np.float32),
        "joints": (np.asarray(meta["joints_3d_cam"]) / r).astype(np.float32),
        "center": center_cam.astype(np.float32),
        "seg": seg.astype(np.float32),
        "occlusion": np.float32(meta["occlusion_ratio"]),
        "radius": np.float32(r),
    }


def split_targets(ds: SceneDataset, seed: int = 0, progress: bool = True, limit: int | None = None) -> dict:
    """Stack ``view_targets`` for the first ``limit`` (default all) views of a split."""
    rng = np.random.default_rng(seed)
    n = len(ds) if limit is None else min(limit, len(ds))
    cache: dict = {}
    rows = [view_targets(ds, i, rng, mesh_cache=cache) for i in tqdm(range(n), desc=f"targets {ds.split}", disable=not progress)]
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}
