"""Tune TTA's learning rate on the val split (paired: accuracy before and after TTA on the same
views, per instruction and occlusion bin). Writes JSON lines to --out.

    python bench/tune_tta.py --data data/scenes --views 40 --lrs 3e-4,3e-3,3e-2 --alpha 0.5
"""
import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from occ_core import evaluate as ev  # noqa: E402
from occ_core.benchmark import encode_views, load_views  # noqa: E402
from occ_core.reward import ClipReward  # noqa: E402
from occ_core.tta import TTAConfig  # noqa: E402
from occ_core.tta_benchmark import run_tta  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/scenes")
    ap.add_argument("--split", default="val")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--views", type=int, default=40)
    ap.add_argument("--skip", type=int, default=0, help="start at this view (e.g. heavily occluded ones later)")
    ap.add_argument("--lrs", default="3e-4,3e-3,3e-2")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--reward-source", default="both")
    ap.add_argument("--render-source", default="recon")
    ap.add_argument("--render-cache", default="runs/tta_renders")
    ap.add_argument("--out", default="runs/tune_tta.jsonl")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from occ_core.vlm import load_vlm
    vlm = load_vlm(args.preset)
    reward = ClipReward.from_pretrained("tiny")
    views = load_views(args.data, args.split, args.render_source, Path(args.render_cache), args.skip + args.views)
    views = {k: v[args.skip:] for k, v in views.items()}
    v1, v2, ok = encode_views(vlm, views)
    for lr in (float(x) for x in args.lrs.split(",")):
        config = replace(TTAConfig(), lr=lr, steps=args.steps, k=args.k, reward_source=args.reward_source)
        t = time.time()
        rows, cost = run_tta(vlm, views, v1, v2, ok, args.alpha, reward, config, progress=False)
        table = ev.accuracy(rows)
        line = {"lr": lr, "steps": args.steps, "k": args.k, "alpha": args.alpha, "reward_source": args.reward_source,
                "views": len(views["names"]), "seconds": round(time.time() - t, 1), "cost": cost["mean_seconds_per_sample"],
                "table": table}
        with open(args.out, "a") as f:
            f.write(json.dumps(line) + "\n")
        for setting, groups in table.items():
            print(f"lr={lr:g} {setting}: " + "; ".join(
                f"{g} n={c['n']} " + " ".join(f"{t}={c[t]:.3f}" for t in ev.TASKS) for g, c in groups.items()))
        print(f"  {cost['mean_seconds_per_sample']:.2f} s/sample", flush=True)


if __name__ == "__main__":
    main()
