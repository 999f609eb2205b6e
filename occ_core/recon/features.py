"""Per-point features of the 3D branch (after MOHO and gSDF), in torch.

Coordinates are *normalised camera coordinates*: the input camera's frame (OpenCV axes) divided by
the object's radius, so the object sits inside a unit ball around its centre whatever its size;
projection to pixels is unchanged by that scaling.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from occ_core.scenes.hand import BONES


def positional_encoding(x: torch.Tensor, n_freqs: int = 6) -> torch.Tensor:
    """[x, sin(2^k π x), cos(2^k π x)] for k < n_freqs: (…, 3) → (…, 3 + 6·n_freqs)."""
    freqs = (2.0 ** torch.arange(n_freqs, dtype=x.dtype, device=x.device)) * math.pi
    angles = x[..., None, :] * freqs[:, None]                      # (…, F, 3)
    return torch.cat([x, angles.sin().flatten(-2), angles.cos().flatten(-2)], -1)


def project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) camera-frame points, (B, 3, 3) intrinsics → (B, N, 2) pixel coordinates."""
    z = points[..., 2:3].clamp(min=1e-4)
    uv = points[..., :2] / z
    return uv * torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None] + torch.stack([K[:, 0, 2], K[:, 1, 2]], -1)[:, None]


def sample_maps(maps: torch.Tensor, uv: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinearly sample (B, C, h, w) maps at pixel coordinates (B, N, 2) of a ``size``-pixel image
    → (B, N, C). Outside the image the features are zero (padding), which the decoder learns."""
    grid = (uv / size) * 2.0 - 1.0                                 # pixel corners at ±1 (align_corners=False)
    out = F.grid_sample(maps, grid[:, :, None, :], mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[..., 0].transpose(1, 2)


def bone_frames(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gSDF's kinematic frames from 21 joints (B, 21, 3): for each of the 20 bones, an origin (its
    parent joint) and a rotation (B, 20, 3, 3) whose rows are the bone axis and two normals.

    The second axis comes from the palm normal (wrist→index × wrist→pinky), so the frames turn with
    the hand, not with the camera."""
    parents = torch.tensor([a for a, _ in BONES], device=joints.device)
    children = torch.tensor([b for _, b in BONES], device=joints.device)
    origin = joints[:, parents]                                     # (B, 20, 3)
    x = F.normalize(joints[:, children] - origin, dim=-1)
    palm = torch.cross(joints[:, 5] - joints[:, 0], joints[:, 17] - joints[:, 0], dim=-1)
    palm = F.normalize(palm, dim=-1)[:, None].expand_as(x)
    y = F.normalize(torch.cross(palm, x, dim=-1), dim=-1)
    z = torch.cross(x, y, dim=-1)
    return origin, torch.stack([x, y, z], dim=-2)


def points_in_bone_frames(points: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
    """(B, N, 3) points expressed in each bone's frame → (B, N, 20·3)."""
    origin, R = bone_frames(joints)
    rel = points[:, :, None, :] - origin[:, None]                   # (B, N, 20, 3)
    local = torch.einsum("bjkc,bnjc->bnjk", R, rel)
    return local.flatten(-2)
