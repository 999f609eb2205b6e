"""Inference of the 3D branch: image → SDF on a coarse-to-fine grid → marching cubes → coloured mesh
→ renders of the object alone (from the input camera and from a fixed canonical view).

The input camera is assumed to have SOMVideo's field of view (focal 480 at 256 px); images are
padded to a square, so the whole photo is seen, and resized to the network's input size.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import trimesh
from PIL import Image
from safetensors.torch import load_file

from occ_core.errors import OccError
from occ_core.geometry import Camera, intrinsics_for, rotation_about
from occ_core.meshing import grid_points, mesh_from_grid
from occ_core.recon.model import ReconConfig, ReconNet
from occ_core.recon.types import Reconstruction
from occ_core.object_view import crop_to_object
from occ_core.render import MeshLayer, shared_renderer

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "checkpoints"
RENDER_BACKGROUND = 1.0  # white, like TripoSR's renders
CANONICAL_YAW, CANONICAL_PITCH = np.radians(40.0), np.radians(-25.0)


class CheckpointError(OccError):
    """A checkpoint folder is missing or incomplete."""


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any PIL image (RGBA, greyscale, 16-bit, palette) → (H, W, 3) uint8; transparency → white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(image, dtype=np.float64)
        a = a / max(a.max(), 1.0) * 255.0
        image = Image.fromarray(a.astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("RGB"))


def square_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Pad to a square with the border colour's median, then resize to ``size``."""
    h, w = rgb.shape[:2]
    if h != w:
        s = max(h, w)
        border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
        canvas = np.empty((s, s, 3), np.uint8)
        canvas[:] = np.median(border, axis=0).astype(np.uint8)
        canvas[(s - h) // 2:(s - h) // 2 + h, (s - w) // 2:(s - w) // 2 + w] = rgb
        rgb = canvas
    if rgb.shape[0] != size:
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))
    return rgb


class Reconstructor:
    """The trained 3D branch with its inference settings (grid resolution, render size)."""

    def __init__(self, model: ReconNet, resolution: int = 64, render_size: int = 128, device: str = "cpu"):
        self.model = model.eval().to(device)
        self.resolution, self.render_size, self.device = resolution, render_size, device

    @classmethod
    def from_pretrained(cls, path: str | Path = "tiny", **kwargs) -> "Reconstructor":
        """Load ``assets/checkpoints/<preset>/recon`` or a folder with model.safetensors + config.json."""
        folder = Path(path)
        if not folder.exists() and (ASSETS / str(path) / "recon").exists():
            folder = ASSETS / str(path) / "recon"
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).exists():
                raise CheckpointError(f"no 3D-branch checkpoint at {folder} (missing {name}); train one with "
                                      "`python -m occ_core train recon --data DIR --out DIR`")
        cfg = ReconConfig.load(folder / "config.json")
        model = ReconNet(cfg)
        try:
            model.load_state_dict(load_file(str(folder / "model.safetensors")))
        except Exception as exc:
            raise CheckpointError(f"the 3D-branch checkpoint at {folder} does not load: {exc}") from None
        return cls(model, **kwargs)

    @property
    def cfg(self) -> ReconConfig:
        return self.model.cfg

    # -- SDF grid ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _query(self, enc: dict, pts: np.ndarray, chunk: int = 32768) -> tuple[np.ndarray, np.ndarray]:
        sdf, rgb = [], []
        for i in range(0, len(pts), chunk):
            p = torch.from_numpy(pts[i:i + chunk]).float().to(self.device)[None]
            s, c = self.model.query(enc, p)
            sdf.append(s[0].cpu().numpy())
            rgb.append(c[0].cpu().numpy())
        return np.concatenate(sdf), np.concatenate(rgb)

    def sdf_grid(self, enc: dict, resolution: int, coarsest: int = 16, dense: bool = False) -> tuple:
        """SDF on a (resolution+1)³ grid around the predicted centre; returns (values, lo, hi, queries).

        Coarse to fine, an octree in grid form: evaluate a ``coarsest``³-cell grid, then halve the
        cells level by level, evaluating new points only inside cells the surface may cross (a sign
        change, or a corner closer to the surface than half the cell's diagonal: any surface point in
        a cell is that close to its nearest corner); elsewhere values are trilinear from the level
        above, which keeps their sign. ``dense=True`` evaluates every point (for comparison)."""
        c = enc["center"][0].cpu().numpy()
        box = self.cfg.box
        lo, hi = c - box, c + box
        n_cells = resolution
        levels = 0
        while n_cells > coarsest and n_cells % 2 == 0:
            n_cells //= 2
            levels += 1
        if dense or levels == 0:
            n = resolution + 1
            values, _ = self._query(enc, grid_points(lo, hi, (n,) * 3))
            return values.reshape((n,) * 3), lo, hi, n ** 3
        values, _ = self._query(enc, grid_points(lo, hi, (n_cells + 1,) * 3))
        values = values.reshape((n_cells + 1,) * 3)
        queries = values.size
        offsets = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
        for _ in range(levels):
            m = n_cells  # cells per side at this level
            corners = np.stack([values[i:m + i, j:m + j, k:m + k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], -1)
            half_diag = box / m * np.sqrt(3)
            near = ((corners.min(-1) < 0) & (corners.max(-1) > 0)) | (np.abs(corners).min(-1) < half_diag)
            n_cells = 2 * m
            size = (n_cells + 1,) * 3
            values = F.interpolate(torch.from_numpy(values)[None, None], size=size, mode="trilinear",
                                   align_corners=True)[0, 0].numpy()
            cells = np.argwhere(near)
            if len(cells) == 0:
                continue
            idx = (cells[:, None, :] * 2 + offsets[None]).reshape(-1, 3)
            flat = np.unique(np.ravel_multi_index(idx.T, size))
            ijk = np.stack(np.unravel_index(flat, size), -1)
            fresh, _ = self._query(enc, (lo + ijk * (hi - lo) / n_cells).astype(np.float32))
            values.reshape(-1)[flat] = fresh
            queries += len(flat)
        return values, lo, hi, queries

    # -- the whole step ---------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, image: Image.Image | np.ndarray, resolution: int | None = None) -> Reconstruction:
        """Reconstruct the held object in 3D from one RGB image. Raises ``ReconstructionError`` when
        the predicted field has no usable surface."""
        t = {}
        t0 = time.perf_counter()
        rgb = image if isinstance(image, np.ndarray) else to_rgb_array(image)
        S = self.cfg.image_size
        x = square_resize(rgb, S)
        K = intrinsics_for(S)
        enc = self.model.encode(torch.from_numpy(x.copy()).permute(2, 0, 1)[None].float().to(self.device) / 255.0,
                                torch.from_numpy(K).float()[None].to(self.device))
        t["encode"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        values, lo, hi, queries = self.sdf_grid(enc, resolution or self.resolution)
        t["sdf_grid"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        mesh = largest_parts(mesh_from_grid(values, lo, hi))
        t["marching_cubes"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        _, colors = self._query(enc, np.asarray(mesh.vertices, dtype=np.float32))
        mesh.visual.vertex_colors = np.concatenate(
            [np.clip(colors * 255 + 0.5, 0, 255).astype(np.uint8), np.full((len(colors), 1), 255, np.uint8)], 1)
        t["color"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        center = enc["center"][0].cpu().numpy().astype(np.float64)
        render, alpha = render_mesh(mesh, input_camera(self.render_size))
        canonical, _ = render_mesh(mesh, canonical_camera(center, self.render_size))
        t["render"] = time.perf_counter() - t1
        h, w = rgb.shape[:2]
        side = max(h, w)
        seg = F.interpolate(enc["seg"], size=(side, side), mode="bilinear", align_corners=False)[0].cpu().numpy() > 0
        seg = seg[:, (side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w]
        visible, amodal = seg[1], seg[2] | seg[1]
        joints = enc["joints"][0].cpu().numpy().astype(np.float64)
        # network pixels → pixels of the padded square → pixels of the input image
        pad = (side - np.array([w, h])) // 2
        joints_2d = input_camera(S).project(joints) * side / S - pad
        t["total"] = time.perf_counter() - t0
        return Reconstruction(
            mesh=mesh, render=Image.fromarray(render), canonical_render=Image.fromarray(canonical),
            joints_3d=joints, joints_2d=joints_2d, hand_mask=seg[0], object_mask=visible,
            occlusion_ratio=float(1.0 - visible.sum() / max(int(amodal.sum()), 1)),
            timings={**t, "sdf_queries": queries, "alpha_pixels": int((alpha > 0.5).sum())}, center=center, amodal_mask=amodal,
            object_view=crop_to_object(render, alpha > 0.5))


def largest_parts(mesh: trimesh.Trimesh, keep: float = 0.1) -> trimesh.Trimesh:
    """Drop floaters: keep connected pieces with at least ``keep`` × the largest piece's faces."""
    parts = mesh.split(only_watertight=False)
    if len(parts) <= 1:
        return mesh
    biggest = max(len(p.faces) for p in parts)
    return trimesh.util.concatenate([p for p in parts if len(p.faces) >= keep * biggest])


def input_camera(size: int) -> Camera:
    """The input view: identity extrinsic in the normalised camera frame."""
    return Camera(intrinsics_for(size), np.eye(4), size, size)


def canonical_camera(center: np.ndarray, size: int) -> Camera:
    """A fixed view turned 40° around and 25° above the input view, same distance to the object."""
    R = rotation_about([0, 1, 0], CANONICAL_YAW) @ rotation_about([1, 0, 0], CANONICAL_PITCH)
    eye = center + R @ (-center)
    return Camera.look_at(eye, center, R @ np.array([0.0, -1.0, 0.0]), size)


def render_mesh(mesh: trimesh.Trimesh, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """The mesh alone over a white background → (uint8 RGB, alpha)."""
    colors = np.asarray(mesh.visual.vertex_colors)[:, :3] / 255.0
    frame = shared_renderer().render([MeshLayer.from_trimesh(mesh, colors, 1)], camera)
    return frame.over(np.full((camera.height, camera.width, 3), RENDER_BACKGROUND, np.float32)), frame.alpha


def export_mesh(mesh: trimesh.Trimesh, path: str | Path) -> Path:
    """Write GLB / OBJ / PLY by suffix, turned from the camera frame (y down) to y up for viewers."""
    path = Path(path)
    if path.suffix.lower() not in (".glb", ".obj", ".ply"):
        raise OccError(f"cannot export a mesh as {path.suffix!r}: use .glb, .obj or .ply")
    m = mesh.copy()
    m.apply_transform(np.diag([1.0, -1.0, -1.0, 1.0]))
    m.export(path)
    return path
