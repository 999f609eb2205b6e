"""Train the tiny preset's CLIP reward model on our scenes (``python -m occ_core train clip``).

Images: every train view twice — the occluded photo, and the object alone composited on white
(from the occlusion-free image and the amodal mask), which looks like the 3D branch's render.
Captions: per image and step one of the reward's templates true of it (``occ_core.captions``):
category, colour + category, one attribute claim ("a round object" / "an object that is not
round"), or the description task's answer. Many images share a caption, so the contrastive loss
has several positives per row: every caption in the batch that is *true* of an image counts
(multi-positive InfoNCE, both directions) — this is also what teaches the "not" captions.

CPU-sized: a few minutes on one thread; the model is small enough to bundle (fp16 safetensors)."""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from occ_core.captions import ATTRIBUTES, attribute_caption, caption_specs, caption_true, category_caption
from occ_core.errors import DatasetError
from occ_core.evaluate import SYNONYMS, parse_category, parse_yes_no
from occ_core.reward import TINY_CLIP_MEAN, TINY_CLIP_MODEL_CFG, TINY_CLIP_STD, build_tiny_clip

LOAD_SIZE = 72  # images are kept at this size and randomly cropped to the model's 64 px
_DESCRIPTION = re.compile(r"the hand holds an? (.+?)\.", re.I)


def read_labels(data: str | Path, split: str) -> list[dict]:
    """One record per view of ``split``: id, labels (category, colour, round, long, thin), description."""
    path = Path(data) / "annotations" / f"{split}.jsonl"
    if not path.exists():
        raise DatasetError(f"{path} not found: is {data} a scenes data set (python -m occ_core data generate)?")
    records = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        turns = [c["value"] for c in rec["conversations"]]
        qa = {turns[i].split("\n")[0].strip(): turns[i + 1] for i in range(0, len(turns) - 1, 2)}
        labels: dict = {"category": None, "color": None}
        description = None
        for q, a in qa.items():
            ql = q.lower()
            if ql.startswith("what"):
                labels["category"] = parse_category(a)
            elif ql.startswith("describe"):
                description = a
            else:
                for attr in ATTRIBUTES:
                    if attr in ql:
                        labels[attr] = parse_yes_no(a)
        if description and labels["category"]:
            m = _DESCRIPTION.match(description.strip())
            if m and m.group(1).endswith(labels["category"]):
                labels["color"] = m.group(1)[: -len(labels["category"])].strip() or None
        records.append({"id": rec["id"], "image": rec["image"], "labels": labels, "description": description})
    return records


def _load(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC))


def object_on_white(data: Path, split: str, view: str, size: int) -> np.ndarray:
    """The occlusion-free image with everything but the (amodal) object painted white."""
    with Image.open(data / "sup" / split / "rgb" / f"{view}.jpg") as im:
        rgb = np.asarray(im.convert("RGB")).copy()
    with Image.open(data / "sup" / split / "segm" / f"{view}.png") as im:
        mask = np.asarray(im.convert("RGB"))[..., 0] > 50
    rgb[~mask] = 255
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))


def load_images(data: str | Path, split: str, records: list[dict], size: int = LOAD_SIZE) -> tuple[torch.Tensor, list[dict]]:
    """uint8 images [2V, 3, size, size] (photos, then objects on white) and their records."""
    data = Path(data)
    photos = [_load(data / r["image"], size) for r in tqdm(records, desc=f"photos ({split})")]
    objects = [object_on_white(data, split, r["id"], size) for r in tqdm(records, desc=f"objects ({split})")]
    arr = np.stack(photos + objects).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr)), records + records


def _normalise(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(TINY_CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(TINY_CLIP_STD).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def augment(images: torch.Tensor, out_size: int, gen: torch.Generator) -> torch.Tensor:
    """Random crop to ``out_size`` and horizontal flip, per image."""
    n, _, s, _ = images.shape
    offs = torch.randint(0, s - out_size + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    out = torch.stack([images[i, :, y:y + out_size, x:x + out_size] for i, (y, x) in enumerate(offs.tolist())])
    out[flips] = out[flips].flip(-1)
    return out


def center(images: torch.Tensor, out_size: int) -> torch.Tensor:
    o = (images.shape[-1] - out_size) // 2
    return images[..., o:o + out_size, o:o + out_size]


def multi_positive_loss(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """InfoNCE in both directions with every true caption (image) a positive: cross-entropy
    against the uniform distribution over positives."""
    pos = positives.float()
    i2t = -(F.log_softmax(logits, 1) * pos / pos.sum(1, keepdim=True)).sum(1).mean()
    t2i = -(F.log_softmax(logits, 0) * pos / pos.sum(0, keepdim=True)).sum(0).mean()
    return (i2t + t2i) / 2


KIND_WEIGHTS = np.array([0.4, 0.1, 0.35, 0.15])  # category, colour+category, attribute, description


def pick_captions(records: list[dict], rng: np.random.Generator) -> list[tuple[str, dict]]:
    out = []
    for r in records:
        specs = caption_specs(r["labels"], r["description"])
        by_kind = [[specs[0]], [s for s in specs[1:2] if "color" in s[1] and len(s[1]) == 2],
                   [s for s in specs if len(s[1]) == 1 and next(iter(s[1])) in ATTRIBUTES],
                   specs[-1:] if r["description"] else []]
        weights = np.array([w if k else 0 for w, k in zip(KIND_WEIGHTS, by_kind)])
        kind = rng.choice(4, p=weights / weights.sum())
        out.append(by_kind[kind][rng.integers(len(by_kind[kind]))])
    return out


@torch.no_grad()
def evaluate_clip(model, tokenizer, images: torch.Tensor, records: list[dict], size: int, batch: int = 256) -> dict:
    """Category accuracy (12-way over the category captions) and attribute accuracy (claim vs its
    opposite), separately on photos and on objects on white."""
    model.eval()
    emb = torch.cat([model.encode_image(_normalise(center(images[i:i + batch], size)), normalize=True)
                     for i in range(0, len(images), batch)])
    cats = list(SYNONYMS)
    cat_txt = model.encode_text(tokenizer([category_caption(c) for c in cats]), normalize=True)
    half = len(images) // 2
    result = {}
    for name, rows in (("photo", range(half)), ("object", range(half, len(images)))):
        rows = list(rows)
        e = emb[rows]
        truth = [records[i]["labels"] for i in rows]
        pred = (e @ cat_txt.T).argmax(1).tolist()
        result[f"{name}_category"] = float(np.mean([cats[p] == t["category"] for p, t in zip(pred, truth)]))
        for attr in ATTRIBUTES:
            pair = model.encode_text(tokenizer([attribute_caption(attr, True), attribute_caption(attr, False)]), normalize=True)
            says = ((e @ pair.T)[:, 0] > (e @ pair.T)[:, 1]).tolist()
            result[f"{name}_{attr}"] = float(np.mean([s == bool(t[attr]) for s, t in zip(says, truth)]))
    return result


def train_clip(data: str | Path, out: str | Path, steps: int = 900, batch_size: int = 128, lr: float = 1e-3,
               weight_decay: float = 0.05, seed: int = 0, threads: int = 1, progress: bool = True,
               init: str | Path | None = None) -> dict:
    """Train the tiny CLIP and write ``config.json`` + ``model.safetensors`` (fp16) to ``out``;
    ``init``: a folder of an earlier run to continue from (a second, shorter schedule)."""
    from safetensors.torch import save_file
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    started = time.time()
    train_records = read_labels(data, "train")
    val_records = read_labels(data, "val")
    train_images, train_records = load_images(data, "train", train_records)
    val_images, val_records = load_images(data, "val", val_records)
    model, _, tokenizer = build_tiny_clip()
    history = []
    if init is not None:
        from safetensors.torch import load_file
        model.load_state_dict({k: v.float() for k, v in load_file(str(Path(init) / "model.safetensors")).items()})
        earlier = json.loads((Path(init) / "config.json").read_text())["training"]
        history = earlier.pop("history", []) + [earlier]
    size = TINY_CLIP_MODEL_CFG["vision_cfg"]["image_size"]
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))))
    losses = []
    bar = tqdm(range(steps), desc="train clip", disable=not progress)
    for step in bar:
        model.train()
        idx = torch.randperm(len(train_images), generator=gen)[:batch_size]
        recs = [train_records[i] for i in idx.tolist()]
        # one text column per distinct caption: shorter text batch, and duplicates are no false negatives
        caps = list({c[0]: c for c in pick_captions(recs, rng)}.values())
        positives = torch.tensor([[caption_true(c[1], r["labels"]) for c in caps] for r in recs])
        img = model.encode_image(_normalise(augment(train_images[idx], size, gen)), normalize=True)
        txt = model.encode_text(tokenizer([c[0] for c in caps]), normalize=True)
        loss = multi_positive_loss(model.logit_scale.exp() * img @ txt.T, positives)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(float(loss))
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    metrics = evaluate_clip(model, tokenizer, val_images, val_records, size)
    elapsed = time.time() - started
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().half().contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    meta = {"model_cfg": TINY_CLIP_MODEL_CFG, "tokenizer": "open_clip SimpleTokenizer (bundled with open_clip)",
            "mean": TINY_CLIP_MEAN, "std": TINY_CLIP_STD, "logit_scale": float(model.logit_scale.exp()),
            "training": {"data": str(data), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                         "threads": threads, "seconds": round(elapsed, 1), "final_loss": float(np.mean(losses[-50:])),
                         "kind_weights": KIND_WEIGHTS.tolist(), "val": metrics, "history": history}}
    (out / "config.json").write_text(json.dumps(meta, indent=1))
    return meta
