"""VLM timings on the bundled tiny preset, measured side by side in one run.

    python bench/bench_vlm.py [--data data/fresh_test] [--split test] [--views 64]

1. First answer about an image (3D reconstruction + both tower passes + beam search) against a second
   question on the same image (cache hit: beam search only). Target: second ≤ 0.3 × first.
2. Batched benchmark generation (one ``generate`` call per 64 views) against one view at a time.
Uses the real 3D branch (``occ_core.recon.Reconstructor``) when it loads, and says so otherwise.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from occ_core.errors import OccError  # noqa: E402
from occ_core.pipeline import OccPipeline  # noqa: E402
from occ_core.scenes.dataset import SceneDataset  # noqa: E402
from occ_core.text import INSTRUCTIONS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/fresh_test")
    ap.add_argument("--split", default="test")
    ap.add_argument("--views", type=int, default=64)
    ap.add_argument("--images", type=int, default=5, help="images for the cache benchmark")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = SceneDataset(args.data, args.split, with_depth=False)
    pipe = OccPipeline.from_pretrained("tiny")
    try:
        pipe.reconstructor
        which = "occ_core.recon.Reconstructor (tiny)"
    except OccError as exc:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from vlm_helpers import OcclusionFreeLookup
        pipe._reconstructor = OcclusionFreeLookup(ds)
        which = f"ground-truth occlusion-free lookup (3D branch unavailable: {exc})"
    pipe.answer(Image.fromarray(ds[0]["image"]), INSTRUCTIONS["round"], alpha=0.5)  # warm-up, not timed

    firsts, seconds = [], []
    for i in range(1, 1 + args.images):
        photo = Image.fromarray(ds[i]["image"])
        t0 = time.perf_counter()
        pipe.answer(photo, INSTRUCTIONS["category"], alpha=0.5)
        t1 = time.perf_counter()
        pipe.answer(photo, INSTRUCTIONS["long"], alpha=0.7)  # new question and new α: no rebuild
        t2 = time.perf_counter()
        firsts.append(t1 - t0)
        seconds.append(t2 - t1)
    first, second = statistics.median(firsts), statistics.median(seconds)
    print(f"reconstructor: {which}")
    print(f"first answer {first * 1000:.0f} ms, second question (cached) {second * 1000:.0f} ms: "
          f"ratio {second / first:.3f} (target ≤ 0.3) {'OK' if second / first <= 0.3 else 'MISSED'}")

    vlm = pipe.vlm
    n = min(args.views, len(ds))
    photos = [Image.fromarray(ds[i]["image"]) for i in range(n)]
    prompt = vlm.prompt_ids(INSTRUCTIONS["category"])
    with torch.no_grad():
        feats = vlm.tower_features(vlm.pixel_values(photos))
        t0 = time.perf_counter()
        batched = vlm.generate(feats, [prompt] * n, num_beams=3, max_new_tokens=12)
        t1 = time.perf_counter()
        single = [vlm.generate(feats[i:i + 1], [prompt], num_beams=3, max_new_tokens=12)[0] for i in range(n)]
        t2 = time.perf_counter()
    same = sum(a == b for a, b in zip(batched, single))
    print(f"benchmark generation, {n} views, beam 3: batched {n / (t1 - t0):.1f} views/s, one at a time "
          f"{n / (t2 - t1):.1f} views/s: speed-up {(t2 - t1) / (t1 - t0):.1f}x; identical answers {same}/{n}")


if __name__ == "__main__":
    main()
