"""The 3D branch's network, small enough to train on two CPU cores (MOHO/gSDF-style).

image ─► CNN ─► pixel-aligned feature maps ─┬─► segmentation (hand, visible object, amodal object): semantic cues
                                             ├─► hand joints (21×3) and object centre, normalised camera frame
                                             └─► per query point x: [features at x's projection, semantic cues
                                                  there, x in each hand bone's frame (from the *predicted* joints),
                                                  positional encoding of x, a global code] ─► MLP ─► SDF, colour
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from occ_core.recon.features import points_in_bone_frames, positional_encoding, project, sample_maps


@dataclass
class ReconConfig:
    image_size: int = 128
    channels: tuple = (32, 48, 64, 96)  # CNN stages, each halving the resolution
    fused: int = 64                     # channels of the fused 1/4-resolution map
    global_dim: int = 64
    hidden: int = 192
    layers: int = 4
    n_freqs: int = 6
    use_hand_features: bool = True     # gSDF's kinematic embedding (ablation: off)
    use_semantic_cues: bool = True     # segmentation sampled at the point (ablation: off)
    box: float = 1.15                  # query box half-size around the object centre (normalised units)
    sdf_clamp: float = 0.1
    extra: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> "ReconConfig":
        d = json.loads(Path(path).read_text())
        d["channels"] = tuple(d["channels"])
        return cls(**d)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.GroupNorm(8, cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1), nn.GroupNorm(8, cout), nn.ReLU(inplace=True))


class ReconNet(nn.Module):
    def __init__(self, cfg: ReconConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.stages = nn.ModuleList([_block(3 if i == 0 else c[i - 1], c[i]) for i in range(len(c))])
        self.lateral = nn.ModuleList([nn.Conv2d(ch, cfg.fused, 1) for ch in c[1:]])
        self.fuse = nn.Sequential(nn.Conv2d(cfg.fused, cfg.fused, 3, 1, 1), nn.ReLU(inplace=True))
        self.seg_head = nn.Conv2d(cfg.fused, 3, 1)
        low = cfg.image_size // 2 ** len(c)
        # LayerNorm before the activation: without it this 6,144-input layer's units all died within
        # a few hundred steps (joints and centre came out the same for every image)
        self.pose_head = nn.Sequential(nn.Flatten(), nn.Linear(c[-1] * low * low, 256), nn.LayerNorm(256), nn.GELU(),
                                       nn.Linear(256, 21 * 3 + 3))
        self.global_head = nn.Linear(c[-1], cfg.global_dim)
        d_in = cfg.fused + c[0] + (2 * cfg.n_freqs + 1) * 3 + cfg.global_dim
        d_in += 3 if cfg.use_semantic_cues else 0
        d_in += 20 * 3 if cfg.use_hand_features else 0
        self.mlp_in = nn.Linear(d_in, cfg.hidden)
        self.mlp = nn.ModuleList([nn.Linear(cfg.hidden + (d_in if i == cfg.layers // 2 else 0), cfg.hidden)
                                  for i in range(cfg.layers)])
        self.out = nn.Linear(cfg.hidden, 4)

    # -- image-level ------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, K: torch.Tensor) -> dict:
        """images (B, 3, S, S) in [0, 1]; K (B, 3, 3) → feature maps, segmentation logits (1/4 res),
        joints and object centre (normalised camera frame)."""
        x = (images - 0.5) / 0.25
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        target = feats[1].shape[-2:]
        fused = sum(F.interpolate(lat(f), size=target, mode="bilinear", align_corners=False)
                    for lat, f in zip(self.lateral, feats[1:]))
        fused = self.fuse(fused)
        pose = self.pose_head(feats[-1])
        center = self._center(pose[:, 63:], K)
        joints = center[:, None] + pose[:, :63].view(-1, 21, 3)
        return {"fine": feats[0], "fused": fused, "seg": self.seg_head(fused), "center": center, "joints": joints,
                "global": self.global_head(feats[-1].mean((2, 3))), "K": K}

    def _center(self, raw: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """Object centre from (u, v) in [-1, 1] image units and depth around 5 radii (the camera
        frames the object at 55–85 % of the image, which puts it 4.4–6.8 radii away)."""
        S = self.cfg.image_size
        u = (raw[:, 0] + 1) * S / 2
        v = (raw[:, 1] + 1) * S / 2
        z = 5.5 * torch.exp(raw[:, 2] * 0.3)
        x = (u - K[:, 0, 2]) / K[:, 0, 0] * z
        y = (v - K[:, 1, 2]) / K[:, 1, 1] * z
        return torch.stack([x, y, z], -1)

    # -- point-level ------------------------------------------------------------------------------
    def query(self, enc: dict, points: torch.Tensor, center: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """SDF (B, N) and colour (B, N, 3) at (B, N, 3) points in the normalised camera frame.

        Points are encoded relative to the object centre: the predicted one at inference, the true
        one in training (``center``), so the decoder learns shape, not the centre head's errors;
        the hand joints move with it, keeping their predicted pose relative to the object."""
        cfg = self.cfg
        pred_center = enc["center"].detach()
        center = pred_center if center is None else center
        joints = enc["joints"].detach() - pred_center[:, None] + center[:, None]
        uv = project(points, enc["K"])
        parts = [sample_maps(enc["fused"], uv, cfg.image_size), sample_maps(enc["fine"], uv, cfg.image_size)]
        if cfg.use_semantic_cues:
            parts.append(torch.sigmoid(sample_maps(enc["seg"], uv, cfg.image_size)))
        if cfg.use_hand_features:
            parts.append(points_in_bone_frames(points, joints))
        rel = points - center[:, None]
        parts.append(positional_encoding(rel / cfg.box, cfg.n_freqs))
        parts.append(enc["global"][:, None].expand(-1, points.shape[1], -1))
        x0 = torch.cat(parts, -1)
        h = F.relu(self.mlp_in(x0))
        for i, layer in enumerate(self.mlp):
            if i == cfg.layers // 2:
                h = torch.cat([h, x0], -1)
            h = F.relu(layer(h))
        out = self.out(h)
        return out[..., 0], torch.sigmoid(out[..., 1:])
