"""Regenerate the app's bundled example images (``assets/examples/``) from ``occ_core.scenes``.

Generates a small test split at 256 px, then picks six views that span low / medium / high
occlusion (two per bin) with six different categories, and writes them as JPEGs with
``examples.json`` (true answers to the four instructions, occlusion ratio, source id).
Deterministic by seed: ``python demo/make_examples.py`` rewrites the same files.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from occ_core.text import INSTRUCTIONS, category_answer, yes_no  # noqa: E402

EXAMPLES = ROOT / "assets" / "examples"
BINS = {"low": (0.0, 0.25), "medium": (0.25, 0.55), "high": (0.55, 1.01)}
PER_BIN = 2


def pick(views: list[dict]) -> list[dict]:
    """Two views per occlusion bin, all of different categories; within a bin the ones nearest the
    bin's middle, so the spread of occlusion is visible."""
    chosen, used = [], set()
    for name, (lo, hi) in BINS.items():
        mid = (lo + min(hi, 0.9)) / 2
        in_bin = sorted((v for v in views if lo <= v["occlusion_ratio"] < hi),
                        key=lambda v: abs(v["occlusion_ratio"] - mid))
        taken = 0
        for v in in_bin:
            if v["category"] not in used and taken < PER_BIN:
                chosen.append({**v, "occlusion_level": name})
                used.add(v["category"])
                taken += 1
        if taken < PER_BIN:
            raise SystemExit(f"only {taken} distinct-category views with {name} occlusion; generate more scenes")
    return chosen


def make_examples(out: Path = EXAMPLES, scenes: int = 36, seed: int = 77, size: int = 256) -> list[dict]:
    from occ_core.scenes.builder import generate_dataset
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "scenes"
        generate_dataset(data, scenes=scenes, views=1, size=size, seed=seed, workers=1,
                         splits={"test": 1.0}, progress=True)
        views = []
        for meta_file in sorted((data / "sup" / "test" / "meta").glob("*.json")):
            meta = json.loads(meta_file.read_text())
            views.append({"id": meta_file.stem, "category": meta["category"], "attributes": meta["attributes"],
                          "occlusion_ratio": round(float(meta["occlusion_ratio"]), 3)})
        chosen = pick(views)
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        records = []
        for v in chosen:
            name = f"{v['category']}_{v['occlusion_level']}.jpg"
            src = data / "ref" / "rgb" / f"{v['id']}.jpg"
            if not src.exists():  # our format keeps every view's occluded image under sup/<split>/rgb too
                src = data / "sup" / "test" / "rgb" / f"{v['id']}.jpg"
            Image.open(src).convert("RGB").save(out / name, quality=92)
            answers = {INSTRUCTIONS["category"]: category_answer(v["category"])}
            answers.update({INSTRUCTIONS[k]: yes_no(v["attributes"][k]) for k in ("round", "long", "thin")})
            records.append({"file": name, "source_id": v["id"], "category": v["category"],
                            "attributes": v["attributes"], "occlusion_ratio": v["occlusion_ratio"],
                            "occlusion_level": v["occlusion_level"], "answers": answers})
    (out / "examples.json").write_text(json.dumps(
        {"generator": f"occ_core.scenes, seed {seed}, {scenes} scenes × 1 view at {size} px (demo/make_examples.py)",
         "examples": records}, indent=1) + "\n")
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(EXAMPLES))
    p.add_argument("--scenes", type=int, default=36)
    p.add_argument("--seed", type=int, default=77)
    args = p.parse_args(argv)
    for r in make_examples(Path(args.out), args.scenes, args.seed):
        print(f"{r['file']:28s} occlusion {r['occlusion_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
