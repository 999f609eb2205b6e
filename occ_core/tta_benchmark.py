"""The "+TTA" rows of the four-instruction benchmark: every (view, instruction) answered after
test-time adaptation at the chosen α, next to the same views' answers before adaptation (the
beam answer of the same run), so the comparison is paired; plus the mean cost per sample."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from occ_core import evaluate as ev
from occ_core.reward import ClipReward
from occ_core.text import INSTRUCTIONS
from occ_core.tta import TTAConfig, adapt_features
from occ_core.vlm.model import blend

MAX_NEW_TOKENS = 12  # as the benchmark's plain answers


def tta_setting_names(alpha: float, config: TTAConfig, n_views: int) -> tuple[str, str]:
    return (f"α={alpha:g} +TTA ({config.steps} steps, K={config.k}, lr={config.lr:g}, {config.reward_source})",
            f"α={alpha:g} before TTA (same {n_views} views)")


def run_tta(vlm, views: dict, v1: torch.Tensor, v2: torch.Tensor, ok: torch.Tensor, alpha: float, reward: ClipReward,
            config: TTAConfig, num_beams: int = 3, limit: int | None = None, traces: Path | None = None,
            progress: bool = True) -> tuple[list[dict], dict]:
    """Benchmark records of the TTA and before-TTA settings, and cost figures."""
    n = min(limit or len(views["names"]), len(views["names"]))
    with_tta, before = tta_setting_names(alpha, config, n)
    rows, seconds = [], []
    out = open(traces, "w") if traces else None
    try:
        for i in tqdm(range(n), desc=f"TTA ({config.steps} steps, K={config.k})", disable=not progress):
            a = alpha if bool(ok[i]) else 1.0
            feats = blend(v1[i:i + 1], v2[i:i + 1], a)
            for task in ev.TASKS:
                result = adapt_features(vlm, feats, INSTRUCTIONS[task], views["photos"][i], views["renders"][i], reward,
                                        config, num_beams, MAX_NEW_TOKENS)
                seconds.append(result.seconds)
                common = {"task": task, "bin": ev.occlusion_bin(views["occlusion"][i]), "id": views["names"][i]}
                truth = views["truth"][i][task]
                rows.append({"setting": with_tta, **common, "answer": result.answer,
                             "correct": ev.is_correct(task, result.answer, truth)})
                rows.append({"setting": before, **common, "answer": result.baseline,
                             "correct": ev.is_correct(task, result.baseline, truth)})
                if out:
                    out.write(json.dumps({**common, "truth": truth, "baseline": result.baseline, "answer": result.answer,
                                          "reward_source": result.reward_source, "seconds": round(result.seconds, 3),
                                          "trace": result.trace}) + "\n")
    finally:
        if out:
            out.close()
    plain = plain_answer_seconds(vlm, v1[:1], num_beams)
    cost = {"views": n, "samples": len(seconds), "mean_seconds_per_sample": float(np.mean(seconds)) if seconds else 0.0,
            "plain_answer_seconds": plain, "config": asdict(config)}
    return rows, cost


@torch.no_grad()
def plain_answer_seconds(vlm, features: torch.Tensor, num_beams: int, repeats: int = 5) -> float:
    """Median seconds of one plain beam-search answer (the cost TTA is compared with)."""
    prompt = vlm.prompt_ids(INSTRUCTIONS["category"])
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        vlm.generate(features, [prompt], num_beams, MAX_NEW_TOKENS)
        times.append(time.perf_counter() - t)
    return float(np.median(times))
