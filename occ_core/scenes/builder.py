"""Generate a whole data set: scenes split into train/val/test, written in parallel, all or nothing.

The data set is written into a hidden sibling folder and renamed into place only when complete, so
an error or Ctrl-C leaves nothing half-written behind.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from occ_core.errors import GenerationError
from occ_core.scenes.generate import make_scene, make_views
from occ_core.scenes.layout import FORMAT_NAME, FORMAT_VERSION, make_dirs, write_scene
from occ_core.scenes.objects import CATEGORIES

DEFAULT_SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}


def split_counts(n_scenes: int, fractions: dict) -> dict:
    """Scenes per split: rounded shares, every split with a positive share gets at least one scene
    when there are enough scenes, the rest goes to the first split."""
    names = list(fractions)
    counts = {k: int(round(n_scenes * fractions[k])) for k in names}
    for k in names[1:]:
        if fractions[k] > 0 and counts[k] == 0 and n_scenes >= len(names):
            counts[k] = 1
    counts[names[0]] = n_scenes - sum(counts[k] for k in names[1:])
    if counts[names[0]] < 0:
        raise GenerationError(f"cannot split {n_scenes} scenes as {fractions}")
    return counts


def parse_splits(text: str) -> dict:
    """``"train=0.8,val=0.1,test=0.1"`` → {"train": 0.8, …}."""
    out = {}
    try:
        for item in text.split(","):
            name, value = item.split("=")
            out[name.strip()] = float(value)
    except ValueError:
        raise GenerationError(f"--splits must look like train=0.8,val=0.1,test=0.1, got {text!r}") from None
    if any(v < 0 for v in out.values()) or sum(out.values()) <= 0 or not all(n.isidentifier() for n in out):
        raise GenerationError(f"--splits needs split names and non-negative shares summing above 0, got {text!r}")
    return out


def check_output_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenerationError(f"output folder {out} exists and is not empty; choose a new folder")
    parent = out.parent
    while not parent.exists():  # missing parents are made (README's `--out data/scenes` on a fresh clone)
        parent = parent.parent
    if not parent.is_dir():
        raise GenerationError(f"cannot write {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise GenerationError(f"cannot write {out}: no write permission in {parent}")


_job: dict = {}


def _init_worker(job: dict) -> None:
    _job.update(job)


def _work(task: tuple) -> tuple:
    index, split = task
    scene = make_scene(_job["seed"], index, _job["categories"])
    views = make_views(scene, _job["seed"], index, _job["views"], _job["size"])
    records = write_scene(_job["root"], split, scene, views)
    return index, split, records, scene.category, scene.attributes, [v.occlusion_ratio for v in views]


def generate_dataset(out: str | Path, scenes: int, views: int = 2, size: int = 128, seed: int = 0,
                     workers: int | None = None, splits: dict | None = None, categories=CATEGORIES,
                     progress: bool = True) -> dict:
    """Generate ``scenes`` scenes × ``views`` views at ``size`` px into the new folder ``out``.

    Returns the summary also written to ``out/dataset.json`` (counts, attribute and occlusion
    statistics)."""
    if scenes <= 0 or views <= 0:
        raise GenerationError(f"--scenes and --views must be positive, got {scenes} and {views}")
    if not 32 <= size <= 1024:
        raise GenerationError(f"--size must be between 32 and 1024 pixels, got {size}")
    unknown = set(categories) - set(CATEGORIES)
    if unknown or not categories:
        raise GenerationError(f"unknown categories {sorted(unknown)}; known: {', '.join(CATEGORIES)}")
    out = Path(out)
    check_output_dir(out)
    counts = split_counts(scenes, splits or DEFAULT_SPLITS)
    tasks, start = [], 0
    for name, n in counts.items():
        tasks += [(i, name) for i in range(start, start + n)]
        start += n

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    except OSError as exc:
        raise GenerationError(f"cannot write {out}: {exc.strerror or exc}") from None
    try:
        make_dirs(tmp, [k for k, n in counts.items() if n > 0])
        job = dict(seed=seed, categories=tuple(categories), views=views, size=size, root=tmp)
        _init_worker(job)
        workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
        results = []
        bar = tqdm(total=len(tasks), desc="scenes", unit="scene", disable=not progress)
        if workers == 1:
            for task in tasks:
                results.append(_work(task))
                bar.update()
        else:
            # spawn, not fork: a process that has rendered once cannot fork a child that renders
            # (Mesa's llvmpipe threads do not survive a fork), and the app renders in-process
            with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
                for res in pool.imap_unordered(_work, tasks, chunksize=2):
                    results.append(res)
                    bar.update()
        bar.close()
        results.sort(key=lambda r: r[0])
        summary = _summary(results, counts, seed=seed, views=views, size=size, categories=categories)
        for name in counts:
            with open(tmp / "annotations" / f"{name}.jsonl", "w") as f:
                for r in results:
                    if r[1] == name:
                        for rec in r[2]:
                            f.write(json.dumps(rec) + "\n")
        (tmp / "dataset.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
        if out.exists():
            out.rmdir()  # checked empty above
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _summary(results, counts, **settings) -> dict:
    ratios = np.array([r for res in results for r in res[5]])
    per_cat: dict = {}
    for _, _, _, category, attrs, _ in results:
        c = per_cat.setdefault(category, Counter())
        c["scenes"] += 1
        for k in ("round", "long", "thin"):
            c[k] += bool(attrs[k])
    hist, edges = np.histogram(ratios, bins=np.linspace(0, 1, 11))
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "splits": counts,
            "settings": {**settings, "categories": list(settings["categories"])},
            "attributes_per_category": {k: dict(v) for k, v in sorted(per_cat.items())},
            "occlusion": {"mean": float(ratios.mean()), "histogram": hist.tolist(), "bin_edges": edges.round(2).tolist()}}
