"""Training stage 2: the 3D branch (``python -m occ_core train recon --data DIR --out DIR``).

Losses (all in the normalised camera frame): clamped L1 on the SDF at near-surface and uniform
points (DeepSDF), L1 on the colour at surface points, L1 on the hand joints and object centre,
binary cross-entropy on the hand / visible-object / amodal-object masks. Checkpoints are
``model.safetensors`` + ``config.json``; ``optimizer.safetensors`` (+ .json) lets a run resume.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from occ_core.checkpoint import load_optimizer, save_optimizer
from occ_core.errors import OccError
from occ_core.recon.model import ReconConfig, ReconNet
from occ_core.recon.targets import split_targets
from occ_core.scenes.dataset import SceneDataset, pooled_cache_folder


def load_targets(data: Path, split: str, cache_dir: Path, progress: bool, limit: int | None = None) -> dict:
    """The split's targets, computed once and cached as safetensors in ``cache_dir``."""
    path = cache_dir / f"targets_{split}{'' if limit is None else f'_{limit}'}.safetensors"
    if path.exists():
        return {k: v.numpy() for k, v in load_file(str(path)).items()}
    t = split_targets(SceneDataset(data, split), progress=progress, limit=limit)
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in t.items()}, str(path))
    return t


def batch_tensors(t: dict, idx: np.ndarray, n_points: int, rng: np.random.Generator) -> dict:
    pick = rng.integers(0, t["points"].shape[1], (len(idx), n_points))
    rows = np.arange(len(idx))[:, None]
    return {
        "images": torch.from_numpy(t["image"][idx]).permute(0, 3, 1, 2).float() / 255.0,
        "K": torch.from_numpy(t["K"][idx]),
        "points": torch.from_numpy(t["points"][idx][rows, pick]),
        "sdf": torch.from_numpy(t["sdf"][idx][rows, pick]),
        "surface": torch.from_numpy(t["surface"][idx]),
        "surface_rgb": torch.from_numpy(t["surface_rgb"][idx]),
        "joints": torch.from_numpy(t["joints"][idx]),
        "center": torch.from_numpy(t["center"][idx]),
        "seg": torch.from_numpy(t["seg"][idx]),
    }


def losses(model: ReconNet, b: dict) -> dict:
    enc = model.encode(b["images"], b["K"])
    d = model.cfg.sdf_clamp
    sdf, _ = model.query(enc, b["points"], center=b["center"])
    _, rgb = model.query(enc, b["surface"], center=b["center"])
    return {
        "sdf": (sdf.clamp(-d, d) - b["sdf"].clamp(-d, d)).abs().mean() * 10,
        "color": (rgb - b["surface_rgb"]).abs().mean(),
        "joints": (enc["joints"] - b["joints"]).abs().mean(),
        "center": (enc["center"] - b["center"]).abs().mean(),
        "seg": F.binary_cross_entropy_with_logits(enc["seg"], b["seg"]),
    }


def save_model(model: ReconNet, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    model.cfg.save(out / "config.json")


def pooled_targets(data_dirs: list[Path], split: str, cache: Path, progress: bool, limit: int | None = None) -> dict:
    """Targets of ``split`` pooled over several data sets, each cached in its ``pooled_cache_folder``."""
    parts = []
    for i, d in enumerate(data_dirs):
        folder = pooled_cache_folder(cache, i, d)
        folder.mkdir(parents=True, exist_ok=True)
        parts.append(load_targets(d, split, folder, progress, limit))
    return parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def train_recon(data: str | Path | list, out: str | Path, steps: int = 2000, batch_size: int = 12, n_points: int = 384,
                lr: float = 2e-3, val_every: int = 500, seed: int = 0, config: ReconConfig | None = None,
                progress: bool = True, train_limit: int | None = None, threads: int | None = None,
                cache_dir: str | Path | None = None) -> dict:
    """Train (or resume) the 3D branch; returns the final validation losses and the wall time.

    The targets are computed once per data set and kept in ``cache_dir`` (default: ``out``), so
    ablation runs can share them."""
    data_dirs = [Path(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else out
    cache.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train = pooled_targets(data_dirs, "train", cache, progress, train_limit)
    val = load_targets(data_dirs[0], "val", cache, progress, 64)
    cfg = config or ReconConfig()
    cfg = replace(cfg, image_size=int(train["image"].shape[1]))
    model = ReconNet(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    start = 0
    if (out / "optimizer.safetensors").exists():
        saved = ReconConfig.load(out / "config.json")
        if saved != cfg:
            raise OccError(f"{out} holds a run with another configuration; use a new --out folder")
        model.load_state_dict(load_file(str(out / "model.safetensors")))
        start = load_optimizer(opt, out / "optimizer.safetensors")["step"]
        rng = np.random.default_rng([seed, start])

    def lr_at(step: int) -> float:  # short warm-up, then cosine to 5 %
        if step < 100:
            return lr * (step + 1) / 100
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))

    history = []
    t0 = time.perf_counter()
    bar = tqdm(range(start, steps), desc="train recon", initial=start, total=steps, disable=not progress)
    model.train()
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        idx = rng.integers(0, len(train["image"]), batch_size)
        parts = losses(model, batch_tensors(train, idx, n_points, rng))
        loss = sum(parts.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        bar.set_postfix({k: f"{v.item():.3f}" for k, v in parts.items()})
        if (step + 1) % val_every == 0 or step + 1 == steps:
            history.append({"step": step + 1, **validate(model, val)})
            save_model(model, out)
            save_optimizer(opt, out / "optimizer.safetensors", {"step": step + 1})
            (out / "history.json").write_text(json.dumps(history, indent=1))
            model.train()
    wall = time.perf_counter() - t0
    result = {"val": history[-1] if history else validate(model, val), "wall_s": wall, "steps": steps}
    (out / "train_summary.json").write_text(json.dumps(result, indent=1))
    return result


@torch.no_grad()
def validate(model: ReconNet, val: dict, n_points: int = 1024) -> dict:
    model.eval()
    rng = np.random.default_rng(0)
    idx = np.arange(len(val["image"]))
    totals: dict = {}
    for chunk in np.array_split(idx, max(1, len(idx) // 16)):
        parts = losses(model, batch_tensors(val, chunk, n_points, rng))
        for k, v in parts.items():
            totals[k] = totals.get(k, 0.0) + v.item() * len(chunk)
    return {k: v / len(idx) for k, v in totals.items()}
