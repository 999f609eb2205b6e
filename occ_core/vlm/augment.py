"""Training-time augmentation of the tiny preset's images (photos and renders) with their masks.

A from-scratch tower sees only a few thousand views, so without help it learns the backgrounds and
the exact framing instead of the objects (photo-only val category accuracy stalled at 0.33 with
mirroring alone). Per batch, in one call each: paste the foreground (hand + visible object for a
photo, the whole object for a render) onto a new background (a fresh scene background, or plain
white like the 3D branch's renders), a random zoom/shift/rotation, and colour jitter. Written by
hand rather than with torchvision's per-image transforms because the masks that give the tower's
per-patch labels must follow the pixels exactly, and one batched ``grid_sample`` does both.

Pixels are the image processor's output (CLIP-normalised); masks are in [0, 1]."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from occ_core.vlm.tiny import CLIP_MEAN, CLIP_STD

_MEAN = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(CLIP_STD).view(1, 3, 1, 1)


@dataclass
class AugmentConfig:
    background_p: float = 0.5     # share of images whose background is replaced
    white_p: float = 0.3           # of those, share on plain white (the 3D branch renders on white)
    zoom: tuple[float, float] = (0.85, 1.2)
    shift: float = 0.1             # of the image size, each axis
    rotate_deg: float = 12.0
    jitter: float = 0.25           # brightness / contrast / saturation, ±


def background_bank(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """``count`` backgrounds like the scenes' own (photo crops and procedural textures), CLIP-normalised."""
    from occ_core.scenes.generate import random_background
    rng = np.random.default_rng(seed)
    images = np.stack([random_background(size, rng) for _ in range(count)])
    return normalise(torch.from_numpy(images).permute(0, 3, 1, 2).float())


def normalise(rgb01: torch.Tensor) -> torch.Tensor:
    return (rgb01 - _MEAN) / _STD


def denormalise(pixels: torch.Tensor) -> torch.Tensor:
    return pixels * _STD + _MEAN


def augment(pixels: torch.Tensor, foreground: torch.Tensor, masks: torch.Tensor, backgrounds: torch.Tensor,
            gen: torch.Generator, cfg: AugmentConfig = AugmentConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented ``pixels`` [B, 3, H, W] and ``masks`` [B, C, H, W] warped the same way.
    ``foreground`` [B, 1, H, W] is what is kept when the background is replaced."""
    b = pixels.shape[0]
    pixels = pixels.float()
    rand = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    # 1. new background
    swap = rand(b) < cfg.background_p
    if bool(swap.any()):
        pick = torch.randint(len(backgrounds), (b,), generator=gen)
        bg = backgrounds[pick].float()
        white = (rand(b) < cfg.white_p).view(b, 1, 1, 1)
        bg = torch.where(white, normalise(torch.ones(1, 3, 1, 1)).expand_as(bg), bg)
        fg = foreground.float()
        pixels = torch.where(swap.view(b, 1, 1, 1), fg * pixels + (1 - fg) * bg, pixels)
    # 2. zoom, shift, rotation, mirror: one affine grid for pixels and masks
    zoom = cfg.zoom[0] + (cfg.zoom[1] - cfg.zoom[0]) * rand(b)
    angle = (rand(b) * 2 - 1) * math.radians(cfg.rotate_deg)
    mirror = torch.where(rand(b) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * mirror, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * mirror, cos
    theta[:, :, 2] = (rand(b, 2) * 2 - 1) * cfg.shift * 2
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    pixels = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)
    masks = F.grid_sample(masks.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # 3. colour jitter in [0, 1] RGB
    rgb = denormalise(pixels)
    j = cfg.jitter
    brightness = 1 + (rand(b, 1, 1, 1) * 2 - 1) * j
    contrast = 1 + (rand(b, 1, 1, 1) * 2 - 1) * j
    saturation = 1 + (rand(b, 1, 1, 1) * 2 - 1) * j
    rgb = rgb * brightness
    mean = rgb.mean(dim=(1, 2, 3), keepdim=True)
    rgb = (rgb - mean) * contrast + mean
    grey = rgb.mean(dim=1, keepdim=True)
    rgb = ((rgb - grey) * saturation + grey).clamp(0, 1)
    return normalise(rgb), masks
