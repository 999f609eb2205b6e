"""3D branch benchmarks, measured side by side in one run:

1. latency of image → mesh → render with the bundled checkpoint at its bundled grid resolution;
2. decoder queries of the coarse-to-fine grid against a dense 128³ grid (target ≥ 4× fewer), and
   the Chamfer distance between the two meshes relative to the object's size (target within 5 %).

    python bench/bench_recon.py [--checkpoint tiny] [--data DIR] [--views 8]

Without --data it generates a few test views (seed 4242) in a temporary folder.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from occ_core.meshing import mesh_from_grid  # noqa: E402
from occ_core.recon.evaluate import surface_metrics  # noqa: E402
from occ_core.recon.infer import Reconstructor, largest_parts  # noqa: E402
from occ_core.scenes.builder import generate_dataset  # noqa: E402
from occ_core.scenes.dataset import SceneDataset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default="tiny")
    ap.add_argument("--data", default=None)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = None
    if args.data is None:
        tmp = tempfile.TemporaryDirectory()
        args.data = Path(tmp.name) / "bench"
        generate_dataset(args.data, args.views, 1, 128, seed=4242, splits={"test": 1.0}, progress=False)
    ds = SceneDataset(args.data, "test")
    rec = Reconstructor.from_pretrained(args.checkpoint)
    rec.reconstruct(ds[0]["image"])  # warm-up: GL context, allocator
    lat, queries, dense_q, rel_cd, dense_s, c2f_s = [], [], [], [], [], []
    for i in range(min(args.views, len(ds))):
        image = ds[i]["image"]
        t0 = time.perf_counter()
        out = rec.reconstruct(image)
        lat.append(time.perf_counter() - t0)
        x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0
        from occ_core.geometry import intrinsics_for
        enc = rec.model.encode(x, torch.from_numpy(intrinsics_for(rec.cfg.image_size)).float()[None])
        with torch.no_grad():
            t0 = time.perf_counter()
            v_c, lo, hi, q_c = rec.sdf_grid(enc, 128)
            c2f_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            v_d, _, _, q_d = rec.sdf_grid(enc, 128, dense=True)
            dense_s.append(time.perf_counter() - t0)
        m_c, m_d = largest_parts(mesh_from_grid(v_c, lo, hi)), largest_parts(mesh_from_grid(v_d, lo, hi))
        size = np.linalg.norm(m_d.bounds[1] - m_d.bounds[0])
        rel_cd.append(surface_metrics(m_c, m_d)["chamfer"] / size)
        queries.append(q_c)
        dense_q.append(q_d)
        print(f"  view {i}: {lat[-1] * 1000:.0f} ms end to end ({out.timings['sdf_queries']} queries at "
              f"{rec.resolution}³); 128³: coarse-to-fine {q_c} vs dense {q_d} queries, Chamfer/size {rel_cd[-1]:.4f}")
    print(f"image → mesh → render at {rec.resolution}³ (bundled): median {np.median(lat) * 1000:.0f} ms, "
          f"{args.threads} threads")
    print(f"128³ grid: dense {np.mean(dense_q):.0f} queries, coarse-to-fine {np.mean(queries):.0f} → "
          f"{np.mean(dense_q) / np.mean(queries):.1f}× fewer (target ≥ 4×); time {np.mean(dense_s):.2f} s vs "
          f"{np.mean(c2f_s):.2f} s ({np.mean(dense_s) / np.mean(c2f_s):.1f}×)")
    print(f"Chamfer(coarse-to-fine, dense) / object size: mean {np.mean(rel_cd) * 100:.2f} %, max "
          f"{np.max(rel_cd) * 100:.2f} % (target within 5 %)")


if __name__ == "__main__":
    main()
