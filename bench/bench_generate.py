"""Time generating a data set: 1,000 scenes × 2 views at 128 px (target ≤ 10 minutes on 2 cores).

    python bench/bench_generate.py [--scenes 1000] [--views 2] [--size 128] [--workers N]

Prints the wall time, scenes per second, the projection to 1,000 scenes and its ratio to the target.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from occ_core.scenes.builder import generate_dataset  # noqa: E402

TARGET_S = 600.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=1000)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = generate_dataset(Path(tmp) / "bench", args.scenes, args.views, args.size, seed=0,
                                   workers=args.workers, progress=False)
        wall = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20
    per_1000 = wall / args.scenes * 1000
    print(f"generate: {args.scenes} scenes × {args.views} views at {args.size} px, {args.workers} workers")
    print(f"  wall {wall:.1f} s  ({args.scenes / wall:.2f} scenes/s, {size_mb:.0f} MiB on disk)")
    print(f"  projected for 1,000 scenes: {per_1000:.0f} s; target {TARGET_S:.0f} s; ratio {per_1000 / TARGET_S:.2f} (≤ 1 meets it)")
    print(f"  occlusion histogram (10 bins over 0–1): {summary['occlusion']['histogram']}")


if __name__ == "__main__":
    main()
