"""Command line: ``python -m occ_core data generate|preview``, ``train vlm``, ``eval``.

Every error a user can cause prints one ``error: …`` line and exits with code 2."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

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
    train, eval_sub = _add_vlm_commands(sub)
    _add_recon_commands(train, eval_sub)
    _add_clip_commands(train)
    return p


def _add_clip_commands(train) -> None:
    """``train clip``: the tiny preset's CLIP reward model of test-time adaptation."""
    t = train.add_parser("clip", help="train the tiny CLIP reward model (test-time adaptation) on scenes")
    t.add_argument("--data", required=True, help="scenes data set (train and val splits)")
    t.add_argument("--out", required=True, help="output folder (config.json + model.safetensors)")
    t.add_argument("--steps", type=_positive_int, default=360)
    t.add_argument("--batch-size", type=_positive_int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=_positive_int, default=1, help="torch threads (1 on a shared 2-core box)")
    t.add_argument("--init", default=None, help="continue from an earlier run's folder")


def _train_clip(args) -> int:
    from occ_core.clip_train import train_clip
    meta = train_clip(args.data, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      seed=args.seed, threads=args.threads, init=args.init)
    val = meta["training"]["val"]
    print(f"trained in {meta['training']['seconds']:.0f} s; val: " + ", ".join(f"{k} {v:.3f}" for k, v in val.items()))
    print(f"wrote {args.out}")
    return 0


def _add_recon_commands(train, eval_sub) -> None:
    """``train recon`` (stage 2, the 3D branch) and ``eval recon``."""
    t = train.add_parser("recon", help="stage 2: train the 3D branch (SDF, colour, hand joints, masks)")
    t.add_argument("--data", required=True, nargs="+", metavar="DIR",
                   help="scenes data set(s): train splits pooled, validation on the first's val split")
    t.add_argument("--out", required=True, help="output folder; rerun the same command to resume")
    t.add_argument("--steps", type=_positive_int, default=2000)
    t.add_argument("--batch-size", type=_positive_int, default=12)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--val-every", type=_positive_int, default=500)
    t.add_argument("--no-hand-features", action="store_true", help="ablation: drop gSDF's kinematic features")
    t.add_argument("--no-semantic-cues", action="store_true", help="ablation: drop the segmentation cues")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=_positive_int, default=None)
    t.add_argument("--cache", default=None, help="folder for the computed targets (default OUT), shared by ablations")

    e = eval_sub.add_parser("recon", help="Chamfer, F-score, silhouette IoU, joint error by occlusion bin")
    e.add_argument("--data", required=True)
    e.add_argument("--split", default="test")
    e.add_argument("--checkpoint", action="append", default=None, metavar="NAME=DIR",
                   help="checkpoint(s) to compare (default: the bundled tiny one)")
    e.add_argument("--out", default=None, help="folder for table.md and metrics.json")
    e.add_argument("--limit", type=_positive_int, default=None)
    e.add_argument("--resolution", type=_positive_int, default=64)
    e.add_argument("--figure", default=None, help="PNG: input, renders and truth for one view per occlusion bin")


def _recon(args) -> int:
    if args.group == "train":
        from occ_core.recon.model import ReconConfig
        from occ_core.recon.train import train_recon
        cfg = ReconConfig(use_hand_features=not args.no_hand_features, use_semantic_cues=not args.no_semantic_cues)
        result = train_recon(args.data, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                             val_every=args.val_every, seed=args.seed, config=cfg, threads=args.threads,
                             cache_dir=args.cache)
        print(f"trained in {result['wall_s']:.0f} s; validation losses: "
              + ", ".join(f"{k} {v:.4f}" for k, v in result["val"].items() if k != "step"))
    else:
        from occ_core.recon.evaluate import evaluate_recon
        pairs = [c.split("=", 1) if "=" in c else (Path(c).name, c) for c in (args.checkpoint or ["tiny"])]
        result = evaluate_recon(dict(pairs), args.data, args.split, args.out, args.limit, args.resolution)
        print(result["markdown"])
        if args.figure:
            from occ_core.recon.figure import pick_views_by_occlusion, reconstruction_figure
            from occ_core.recon.infer import Reconstructor
            from occ_core.scenes.dataset import SceneDataset
            ds = SceneDataset(args.data, args.split)
            rec = Reconstructor.from_pretrained(pairs[0][1], resolution=args.resolution)
            print(f"wrote {reconstruction_figure(rec, ds, pick_views_by_occlusion(ds), args.figure)}")
    return 0


def _add_vlm_commands(sub):
    """``train vlm`` (stage-1 instruction tuning) and ``eval`` (the four-instruction benchmark)."""
    train = sub.add_parser("train", help="train a model").add_subparsers(dest="command", required=True)
    t = train.add_parser("vlm", help="stage 1: instruction-tune the dual-view LLaVA on the five tasks")
    t.add_argument("--data", required=True, nargs="+", metavar="DIR",
                   help="scenes data set(s); the train splits of several are pooled (the first's text trains the tokenizer)")
    t.add_argument("--out", required=True, help="output folder; rerun the same command to resume")
    t.add_argument("--preset", default="tiny", help="tiny (from scratch, full fine-tuning) or a real preset (LoRA)")
    t.add_argument("--render-source", default="recon", choices=("recon", "occlusion-free"),
                   help="v2's input: 3D-branch renders (cached) or the ground-truth occlusion-free image")
    t.add_argument("--render-cache", default=None, help="folder for cached renders (default OUT/renders)")
    t.add_argument("--render-workers", type=_positive_int, default=None,
                   help="processes making the 3D branch's renders, once (default: all cores)")
    t.add_argument("--recon-share", type=float, default=0.0,
                   help="with --render-source occlusion-free: this share of training views gets the 3D branch's render")
    t.add_argument("--recon-resolution", type=_positive_int, default=32, help="SDF grid of those renders (default 32)")
    t.add_argument("--fp32", action="store_true", help="instruction-tune in float32 (default: bf16 autocast)")
    t.add_argument("--epochs", type=_positive_int, default=2, help="instruction-tuning epochs")
    t.add_argument("--tower-epochs", type=int, default=40, help="tiny: vision-tower warm-up epochs first (0: none)")
    t.add_argument("--tower-lr", type=float, default=2e-3, help="tiny: peak lr of the tower warm-up")
    t.add_argument("--no-augment", action="store_true",
                   help="only mirror the images (default: background swap, zoom/shift/rotation, colour jitter)")
    t.add_argument("--batch-size", type=_positive_int, default=32)
    t.add_argument("--lr", type=float, default=1.5e-3)
    t.add_argument("--lora", action="store_true", help="LoRA on the LLM (default for real presets)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=_positive_int, default=1, help="torch threads (1 is faster on a shared 2-core box)")

    e = sub.add_parser("eval", help="four-instruction benchmark of a VLM (α = 1, α = 0, α chosen on val)")
    e.add_argument("--preset", default="tiny", help="preset name or model folder")
    e.add_argument("--data", help="scenes data set holding the split to test")
    e.add_argument("--split", default="test")
    e.add_argument("--val-data", default=None, help="data set holding the val split α is chosen on (default --data)")
    e.add_argument("--out", help="folder for results.md/.csv/.json, confusion.csv, alpha_curve.png")
    e.add_argument("--render-source", default="recon", choices=("recon", "occlusion-free"))
    e.add_argument("--render-workers", type=_positive_int, default=None,
                   help="processes making the 3D branch's renders, once (default: all cores)")
    e.add_argument("--batch-size", type=_positive_int, default=64)
    e.add_argument("--num-beams", type=_positive_int, default=3)
    e.add_argument("--limit", type=_positive_int, default=None, help="first N views of each split only")
    e.add_argument("--threads", type=_positive_int, default=1)
    e.add_argument("--tta-steps", type=int, default=0, help="add +TTA rows: test-time adaptation steps (0: none)")
    e.add_argument("--tta-k", type=_positive_int, default=None, help="TTA samples per step (default TTAConfig's)")
    e.add_argument("--tta-lr", type=float, default=None, help="TTA learning rate (default TTAConfig's)")
    e.add_argument("--tta-target", default="projector", choices=("projector", "lora"))
    e.add_argument("--tta-reward-source", default="both", choices=("both", "image", "render"))
    e.add_argument("--tta-limit", type=_positive_int, default=None, help="TTA rows on the first N test views only")
    e.add_argument("--reward", default=None, help="CLIP reward model: tiny, a real preset, open_clip:MODEL/TAG or a folder")
    return train, e.add_subparsers(dest="command", required=False)


def _train(args) -> int:
    if args.command == "recon":
        return _recon(args)
    if args.command == "clip":
        return _train_clip(args)
    if args.command == "vlm":
        from occ_core.vlm.train import TrainConfig, train
        train(TrainConfig(data=args.data, out=args.out, preset=args.preset, render_source=args.render_source,
                          render_cache=args.render_cache, epochs=args.epochs, tower_epochs=args.tower_epochs,
                          tower_lr=args.tower_lr, augment=not args.no_augment, batch_size=args.batch_size, lr=args.lr,
                          lora=args.lora or args.preset != "tiny", seed=args.seed, threads=args.threads,
                          render_workers=args.render_workers or os.cpu_count() or 1, recon_share=args.recon_share,
                          recon_resolution=args.recon_resolution, bf16=not args.fp32))
    return 0


def _tta_options(args) -> dict | None:
    """The benchmark's TTA settings from ``--tta-*`` (None without ``--tta-steps``)."""
    if args.tta_steps <= 0:
        return None
    from dataclasses import replace
    from occ_core.reward import ClipReward, PRETRAINED_REWARD_MODELS
    from occ_core.tta import TTAConfig
    config = replace(TTAConfig(), steps=args.tta_steps, target=args.tta_target, reward_source=args.tta_reward_source,
                     **({"k": args.tta_k} if args.tta_k else {}), **({"lr": args.tta_lr} if args.tta_lr else {}))
    reward = args.reward or (args.preset if args.preset in PRETRAINED_REWARD_MODELS else "tiny")
    return {"config": config, "reward": ClipReward.from_pretrained(reward), "limit": args.tta_limit}


def _eval(args) -> int:
    if args.command == "recon":
        return _recon(args)
    if args.command is None:  # the VLM benchmark
        if not args.data or not args.out:
            raise OccError("eval needs --data DIR and --out DIR")
        import torch
        from occ_core.benchmark import run_benchmark
        from occ_core.vlm import load_vlm
        torch.set_num_threads(args.threads)
        summary = run_benchmark(load_vlm(args.preset), args.data, args.split, args.out, args.val_data,
                                render_source=args.render_source, batch_size=args.batch_size,
                                num_beams=args.num_beams, limit=args.limit, tta=_tta_options(args),
                                render_workers=args.render_workers or os.cpu_count() or 1)
        print((Path(args.out) / "results.md").read_text())
        print(f"chosen α = {summary['chosen_alpha']:g}; wrote {args.out}")
    return 0


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
        return {"data": _data, "train": _train, "eval": _eval}[args.group](args)
    except OccError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
