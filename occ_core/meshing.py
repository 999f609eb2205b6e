"""Signed distance field → triangle mesh, shared by scene generation and the 3D branch."""
from __future__ import annotations

from typing import Callable

import numpy as np
import trimesh
from skimage.measure import marching_cubes

from occ_core.errors import ReconstructionError


def grid_points(lo: np.ndarray, hi: np.ndarray, shape: tuple) -> np.ndarray:
    """(nx*ny*nz, 3) grid points spanning the box [lo, hi], in C order."""
    axes = [np.linspace(lo[i], hi[i], shape[i]) for i in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def mesh_from_grid(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> trimesh.Trimesh:
    """Marching cubes at level 0 of an SDF sampled on a regular grid over [lo, hi].

    Raises ``ReconstructionError`` when the field has NaN/inf, no zero crossing, or gives a
    degenerate mesh. skimage orients faces outward for an SDF that is negative inside."""
    if not np.all(np.isfinite(values)):
        raise ReconstructionError(f"the signed distance field has {int(np.sum(~np.isfinite(values)))} NaN/inf values")
    if values.min() >= 0 or values.max() <= 0:
        where = "everywhere outside" if values.min() >= 0 else "everywhere inside"
        raise ReconstructionError(f"the signed distance field has no zero crossing: the grid is {where} the surface")
    spacing = (np.asarray(hi, float) - lo) / (np.asarray(values.shape) - 1)
    verts, faces, _, _ = marching_cubes(values, level=0.0, spacing=tuple(spacing))
    mesh = trimesh.Trimesh(verts + lo, faces, process=False)  # faces come out CCW seen from outside
    if len(mesh.faces) < 4 or mesh.area <= 0:
        raise ReconstructionError(f"marching cubes gave a degenerate mesh ({len(mesh.faces)} faces)")
    return mesh


def surface_bounds(sdf: Callable[[np.ndarray], np.ndarray], half_size: float = 0.2, res: int = 48) -> tuple:
    """A box that surely contains the zero level set of a 1-Lipschitz SDF inside [-half_size, half_size]³.

    Any surface point lies within h·√3/2 of a grid point, whose |sdf| is at most that distance, so
    the grid points with sdf ≤ h·√3/2, grown by h, bound the surface."""
    lo, hi = np.full(3, -half_size), np.full(3, half_size)
    pts = grid_points(lo, hi, (res,) * 3)
    h = 2 * half_size / (res - 1)
    near = pts[sdf(pts) <= h * np.sqrt(3) / 2]
    if len(near) == 0:
        raise ReconstructionError("the signed distance field has no surface in the search box")
    return near.min(0) - h, near.max(0) + h


def mesh_sdf(sdf: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray, cells: int = 64,
             min_cells: int = 20) -> trimesh.Trimesh:
    """Mesh an SDF over [lo, hi]: ``cells`` along the longest side, at least ``min_cells`` on the
    others (so a 3 mm knife blade still gets enough samples across its thickness)."""
    ext = np.asarray(hi, float) - lo
    shape = tuple(int(max(min_cells, np.ceil(cells * e / ext.max()))) + 1 for e in ext)
    values = sdf(grid_points(lo, hi, shape)).reshape(shape)
    return mesh_from_grid(values, np.asarray(lo, float), np.asarray(hi, float))
