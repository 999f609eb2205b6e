"""Camera geometry shared by scene generation, reconstruction and rendering.

Conventions (OpenCV, as in SOMVideo and MOHO): the camera looks along +z, x to the right, y down;
``extrinsic`` is the 4×4 world→camera transform, ``X_cam = R @ X_world + t``; ``K`` is the 3×3
pinhole intrinsic matrix in pixels, with pixel centres at integer coordinates + 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# SOMVideo renders 256×256 images with focal 480 and the principal point at the centre; we keep the
# same field of view (about 30°) at every image size.
SOMVIDEO_SIZE = 256
SOMVIDEO_FOCAL = 480.0


def rotation_about(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation matrix about a (not necessarily unit) axis."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def orthonormal_frame(forward: np.ndarray, up_hint: np.ndarray) -> np.ndarray:
    """3×3 matrix whose rows are (right, down, forward) for a camera looking along ``forward``."""
    f = np.asarray(forward, dtype=np.float64)
    f = f / np.linalg.norm(f)
    up = np.asarray(up_hint, dtype=np.float64)
    if abs(np.dot(up / np.linalg.norm(up), f)) > 0.99:  # looking straight along the hint
        up = np.array([1.0, 0.0, 0.0]) if abs(f[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    right = np.cross(f, up)
    right /= np.linalg.norm(right)
    down = np.cross(f, right)
    return np.stack([right, down, f])


@dataclass
class Camera:
    """A pinhole camera: intrinsics ``K`` (3×3), extrinsic world→camera (4×4), image size (w, h)."""

    K: np.ndarray
    extrinsic: np.ndarray
    width: int
    height: int

    @classmethod
    def look_at(cls, eye, target, up, size: int) -> "Camera":
        """A camera at ``eye`` looking at ``target`` with SOMVideo's field of view at ``size`` px."""
        R = orthonormal_frame(np.asarray(target, float) - np.asarray(eye, float), up)
        ext = np.eye(4)
        ext[:3, :3] = R
        ext[:3, 3] = -R @ np.asarray(eye, float)
        return cls(K=intrinsics_for(size), extrinsic=ext, width=size, height=size)

    @property
    def R(self) -> np.ndarray:
        return self.extrinsic[:3, :3]

    @property
    def t(self) -> np.ndarray:
        return self.extrinsic[:3, 3]

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates."""
        return -self.R.T @ self.t

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        return points @ self.R.T + self.t

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """(N, 3) world points → (N, 2) pixel coordinates."""
        return project_points(self.world_to_camera(points_world), self.K)

    def to_dict(self) -> dict:
        return {"K": self.K.tolist(), "extrinsic": self.extrinsic.tolist(),
                "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict) -> "Camera":
        return cls(K=np.asarray(d["K"], float), extrinsic=np.asarray(d["extrinsic"], float),
                   width=int(d["width"]), height=int(d["height"]))


def intrinsics_for(size: int) -> np.ndarray:
    """SOMVideo's intrinsics (focal 480 at 256 px, centred principal point) scaled to ``size``."""
    f = SOMVIDEO_FOCAL * size / SOMVIDEO_SIZE
    return np.array([[f, 0.0, size / 2], [0.0, f, size / 2], [0.0, 0.0, 1.0]])


def project_points(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(…, 3) camera-frame points → (…, 2) pixels. Works on numpy arrays and torch tensors."""
    z = points_cam[..., 2:3]
    z = z.clip(min=1e-6) if hasattr(z, "clip") else z
    uv = points_cam[..., :2] / z
    return uv * K[[0, 1], [0, 1]] + K[[0, 1], [2, 2]]
