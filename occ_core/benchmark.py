"""Run the four-instruction benchmark: the whole split in one process, batched generation.

Tower features of every photo and render are computed once; each α of the sweep only re-blends
them. α is chosen on the validation split; the test table has α = 1 (CLIP only), α = 0 (3D only)
and the chosen α, overall and per occlusion bin, plus a confusion matrix and an accuracy-vs-α plot."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from occ_core import evaluate as ev
from occ_core.scenes.dataset import SceneDataset
from occ_core.text import INSTRUCTIONS
from occ_core.vlm.model import DualViewLlava, blend
from occ_core.vlm.render_cache import render_paths

ALPHA_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)


def load_views(data: str | Path, split: str, render_source: str, cache_dir: Path, limit: int | None = None,
               render_workers: int = 1) -> dict:
    """Photos, renders (None where the 3D branch failed), ground truth and occlusion of a split."""
    ds = SceneDataset(data, split, with_depth=False)
    names = ds.names[:limit] if limit else ds.names
    renders = render_paths(data, split, names, render_source, cache_dir, workers=render_workers)
    views = {"names": names, "photos": [], "renders": [], "truth": [], "occlusion": []}
    for n in names:
        with Image.open(ds.ref / "rgb" / f"{n}.jpg") as im:
            views["photos"].append(im.convert("RGB"))
        if renders[n] is None:
            views["renders"].append(None)
        else:
            with Image.open(renders[n]) as im:
                views["renders"].append(im.convert("RGB"))
        meta = ds._meta(n)
        views["truth"].append({"category": meta["category"], **meta["attributes"]})
        views["occlusion"].append(float(meta["occlusion_ratio"]))
    return views


@torch.no_grad()
def encode_views(vlm: DualViewLlava, views: dict, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tower features of photos (v1) and renders (v2) of a split; ``ok`` marks views with a render."""
    def run(images):
        return torch.cat([vlm.tower_features(vlm.pixel_values(images[i:i + batch_size]))
                          for i in range(0, len(images), batch_size)])
    ok = torch.tensor([r is not None for r in views["renders"]])
    v1 = run(views["photos"])
    v2 = run([r if r is not None else p for r, p in zip(views["renders"], views["photos"])])
    return v1, v2, ok


@torch.no_grad()
def answers_at(vlm: DualViewLlava, v1, v2, ok, alpha: float, task: str, batch_size: int, num_beams: int) -> list[str]:
    """Answers to one instruction for the whole split at one α (α = 1 where there is no render)."""
    alphas = torch.where(ok, torch.tensor(alpha), torch.tensor(1.0))
    feats = blend(v1, v2, alphas)
    prompt = vlm.prompt_ids(INSTRUCTIONS[task])
    out = []
    for i in range(0, len(feats), batch_size):
        chunk = feats[i:i + batch_size]
        out += vlm.generate(chunk, [prompt] * len(chunk), num_beams=num_beams, max_new_tokens=12)
    return out


def sweep(vlm, views, alphas, batch_size, num_beams, desc) -> dict[float, dict[str, list[str]]]:
    v1, v2, ok = encode_views(vlm, views, batch_size)
    result = {}
    for alpha in tqdm(alphas, desc=desc):
        result[alpha] = {task: answers_at(vlm, v1, v2, ok, alpha, task, batch_size, num_beams) for task in ev.TASKS}
    return result


def records(views: dict, answers: dict[str, list[str]], setting: str) -> list[dict]:
    rows = []
    for task in ev.TASKS:
        for i, answer in enumerate(answers[task]):
            rows.append({"setting": setting, "task": task, "bin": ev.occlusion_bin(views["occlusion"][i]),
                         "correct": ev.is_correct(task, answer, views["truth"][i][task]), "id": views["names"][i],
                         "answer": answer})
    return rows


def mean_accuracy(views, answers) -> float:
    table = ev.accuracy(records(views, answers, "x"))["x"]["overall"]
    return float(np.mean([table[t] for t in ev.TASKS]))


def run_benchmark(vlm: DualViewLlava, data: str, split: str, out: str | Path, val_data: str | None = None,
                  val_split: str = "val", render_source: str = "recon", alphas=ALPHA_GRID, batch_size: int = 64,
                  num_beams: int = 3, limit: int | None = None, tta: dict | None = None, render_workers: int = 1) -> dict:
    """Write results.{md,csv,json}, confusion.csv and alpha_curve.png to ``out``; return the table.
    ``tta``: {"config": TTAConfig, "reward": ClipReward, "limit": views or None} adds "+TTA" rows at
    the chosen α (``occ_core.tta_benchmark``) and tta_traces.jsonl."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    val = load_views(val_data or data, val_split, render_source, out / "renders" / "val", limit, render_workers)
    val_sweep = sweep(vlm, val, alphas, batch_size, num_beams, f"α sweep on {val_split}")
    val_scores = {a: mean_accuracy(val, val_sweep[a]) for a in alphas}
    chosen = max(alphas, key=lambda a: (round(val_scores[a], 6), a))  # ties → more photo
    test = load_views(data, split, render_source, out / "renders" / "test", limit, render_workers)
    test_sweep = sweep(vlm, test, alphas, batch_size, num_beams, f"α sweep on {split}")
    settings = {"α=1 (CLIP only)": 1.0, "α=0 (3D only)": 0.0, f"α={chosen:g} (chosen on {val_split})": chosen}
    rows = [r for name, a in settings.items() for r in records(test, test_sweep[a], name)]
    tta_cost = None
    if tta:
        from occ_core.tta_benchmark import run_tta, tta_setting_names
        tta_rows, tta_cost = run_tta(vlm, test, *encode_views(vlm, test, batch_size), chosen, tta["reward"], tta["config"],
                                     num_beams, tta.get("limit"), out / "tta_traces.jsonl")
        rows += tta_rows
        settings.update({name: chosen for name in tta_setting_names(chosen, tta["config"], tta_cost["views"])})
    table = ev.accuracy(rows)
    truths = [t["category"] for t in test["truth"]]
    labels, cols, matrix = ev.confusion_matrix(truths, test_sweep[chosen]["category"])
    curve = {a: ev.accuracy(records(test, test_sweep[a], "x"))["x"]["overall"] for a in alphas}
    elapsed = time.time() - started

    md = [f"# Benchmark: {split} split of {data} ({len(test['names'])} views), render source: {render_source}",
          "", ev.markdown_table(table, list(settings)), "",
          f"α chosen on {val_split} ({len(val['names'])} views): {chosen:g}; val mean accuracy per α: " +
          ", ".join(f"{a:g}: {s:.3f}" for a, s in val_scores.items()), "",
          f"## Confusion matrix, \"what's the object\" (α = {chosen:g}; rows true, columns answered)", "",
          "| true \\ answered | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    md += [f"| {lab} | " + " | ".join(str(v) for v in row) + " |" for lab, row in zip(labels, matrix)]
    if tta_cost:
        md += ["", f"TTA: {tta_cost['samples']} samples ({tta_cost['views']} views × {len(ev.TASKS)} instructions), "
                   f"{tta_cost['mean_seconds_per_sample']:.2f} s per sample vs {tta_cost['plain_answer_seconds']:.3f} s "
                   f"for a plain answer; traces in tta_traces.jsonl"]
    md += ["", f"{elapsed:.0f} s for {len(alphas)} α × {len(ev.TASKS)} instructions × "
               f"{len(val['names']) + len(test['names'])} views, beam {num_beams}, batch {batch_size}"]
    (out / "results.md").write_text("\n".join(md) + "\n")
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["setting", "occlusion", "n", *ev.TASKS])
        for setting in settings:
            for group in ("overall", *ev.OCCLUSION_BINS):
                cell = table[setting].get(group)
                if cell:
                    w.writerow([setting, group, cell["n"], *(f"{cell[t]:.4f}" for t in ev.TASKS)])
    with open(out / "confusion.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true", *cols])
        w.writerows([[lab, *row] for lab, row in zip(labels, matrix)])
    summary = {"split": split, "data": str(data), "render_source": render_source, "chosen_alpha": chosen,
               "val_mean_accuracy": {str(a): s for a, s in val_scores.items()}, "table": table,
               "alpha_curve": {str(a): c for a, c in curve.items()}, "confusion": {"rows": labels, "cols": cols, "matrix": matrix},
               "tta": tta_cost, "seconds": round(elapsed, 1)}
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    (out / "answers.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    plot_curve(curve, out / "alpha_curve.png", f"{split}: accuracy vs α ({render_source} renders)")
    return summary


def plot_curve(curve: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    alphas = sorted(curve)
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for task in ev.TASKS:
        ax.plot(alphas, [curve[a][task] for a in alphas], marker="o", label=task)
    ax.set_xlabel("α (1 = photo only, 0 = 3D render only)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
