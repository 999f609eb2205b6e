"""Checkpoints as safetensors + JSON: model weights, and the optimiser state for resuming.

``torch.save`` would pickle; the optimiser's tensors go to safetensors and its plain numbers to JSON.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save_optimizer(opt: torch.optim.Optimizer, path: Path, extra: dict) -> None:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for k, v in state.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v.contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    save_file(tensors, str(path))
    Path(path).with_suffix(".json").write_text(json.dumps(
        {"param_groups": sd["param_groups"], "scalars": scalars, **extra}, indent=1))


def load_optimizer(opt: torch.optim.Optimizer, path: Path) -> dict:
    """Restore ``opt`` from ``save_optimizer``'s files; returns the ``extra`` dict saved with it."""
    meta = json.loads(Path(path).with_suffix(".json").read_text())
    state: dict = {}
    for key, v in load_file(str(path)).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    for key, v in meta.pop("scalars").items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    return meta
