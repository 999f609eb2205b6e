"""Command line: ``python -m occ_core data generate|preview``.

Every error a user can cause prints one ``error: …`` line and exits with code 2."""
from __future__ import annotations

import argparse
import os
import sys

from occ_core.errors import OccError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m occ_core", description="occ-mllm: hand-held occluded object understanding")
    sub = p.add_subparsers(dest="group", required=True)

    data = sub.add_parser("data", help="synthetic hand-held-object scenes").add_subparsers(dest="command", required=True)
    g = data.add_parser("generate", help="generate a data set (train/val/test splits)")
    g.add_argument("--out", required=True, help="new (or empty) folder to write")
    g.add_argument("--scenes", type=_positive_int, required=True, help="number of scenes")
    g.add_argument("--views", type=_positive_int, default=2, help="camera views per scene (default 2)")
    g.add_argument("--size", type=_positive_int, default=128, help="image size in pixels (default 128)")
    g.add_argument("--seed", type=int, default=0, help="random seed; same seed → byte-identical files")
    g.add_argument("--workers", type=_positive_int, default=None, help="processes (default: all cores)")
    g.add_argument("--splits", default="train=0.8,val=0.1,test=0.1", help="split shares (default train=0.8,val=0.1,test=0.1)")
    g.add_argument("--categories", default=None, help="comma-separated subset of the categories")

    pv = data.add_parser("preview", help="contact sheet of a data set")
    pv.add_argument("dir", help="data set folder")
    pv.add_argument("--out", required=True, help="PNG to write")
    pv.add_argument("--split", default="train")
    pv.add_argument("--rows", type=_positive_int, default=8)
    pv.add_argument("--trust-pickle", action="store_true", help="read pickle meta files of a SOMVideo export")
    return p


def _data(args) -> int:
    if args.command == "generate":
        from occ_core.scenes.builder import generate_dataset, parse_splits
        from occ_core.scenes.objects import CATEGORIES
        cats = tuple(c.strip() for c in args.categories.split(",")) if args.categories else CATEGORIES
        summary = generate_dataset(args.out, args.scenes, args.views, args.size, args.seed, args.workers,
                                   parse_splits(args.splits), cats, progress=True)
        print(f"wrote {sum(summary['splits'].values())} scenes × {args.views} views to {args.out} "
              f"({', '.join(f'{k} {v}' for k, v in summary['splits'].items())}); "
              f"mean occlusion {summary['occlusion']['mean']:.2f}")
    elif args.command == "preview":
        from occ_core.scenes.preview import contact_sheet
        print(f"wrote {contact_sheet(args.dir, args.out, args.split, args.rows)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return {"data": _data}[args.group](args)
    except OccError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
