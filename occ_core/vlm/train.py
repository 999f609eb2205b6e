"""Stage 1: instruction tuning of the dual-view LLaVA on the five tasks (nanoGPT-style, one file).

Each training example is one view: its five question/answer pairs as one LLaVA conversation in a
random order (so every question is also seen first, as at evaluation), the photo and its render
blended with α ~ U[0, 1] drawn per example (so α stays a meaningful knob at test time). Loss on
answer tokens only. Tiny: full fine-tuning from scratch with our own tokenizer; real presets: LoRA
on the LLM plus the projector. Checkpoints (safetensors) every ``save_every`` steps; rerunning the
same command resumes from the last one."""
from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from occ_core.errors import CheckpointError, OccError
from occ_core.object_view import crop_to_object
from occ_core.scenes.dataset import SceneDataset, pooled_cache_folder
from occ_core.vlm.augment import augment, background_bank
from occ_core.vlm.model import DualViewLlava, blend
from occ_core.scenes.layout import SEGM_VALUE
from occ_core.scenes.objects import CATEGORIES
from occ_core.vlm.prompts import conversation_pairs, encode_turns
from occ_core.vlm.render_cache import render_paths

ATTRIBUTES = ("round", "long", "thin")
BACKGROUND, HAND = len(CATEGORIES), len(CATEGORIES) + 1  # extra patch classes


@dataclass
class TrainConfig:
    data: str | list[str]            # one scenes data set, or several whose train splits are pooled
    out: str
    preset: str = "tiny"
    render_source: str = "recon"
    render_cache: str | None = None   # default: <out>/renders
    render_workers: int = 1          # processes making the 3D branch's renders (recon source, once)
    recon_share: float = 0.0         # occlusion-free source: this share of training views gets the 3D
                                     # branch's render instead, so v2 also learns what the app gives it
    recon_resolution: int = 32       # SDF grid of those renders (6.5x cheaper than the app's 64³)
    tower_epochs: int = 40           # tiny only: warm up the vision tower on the labels first
    tower_batch_size: int = 32
    tower_lr: float = 2e-3
    epochs: int = 2
    turns: int = 3                   # each example: 1…turns random question/answer pairs
    batch_size: int = 32
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.01
    lora: bool = False               # LoRA on the LLM (+ full projector); the default for real presets
    lora_rank: int = 16
    save_every: int = 100
    seed: int = 0
    augment: bool = True            # background swap, zoom/shift/rotation, colour jitter (augment.py)
    threads: int = 1                 # 1 beats 2 when the 2 cores are shared: OpenMP barriers stall
    bf16: bool = True                # instruction tuning under bf16 autocast (1.4x faster steps on CPU)

    @property
    def data_dirs(self) -> list[str]:
        return [self.data] if isinstance(self.data, (str, Path)) else [str(d) for d in self.data]


# ---- data --------------------------------------------------------------------------------------
def corpus_texts(ds: SceneDataset) -> list[str]:
    """Text the tiny tokenizer is trained on: our conversations, the prompt format, answer synonyms."""
    from occ_core.evaluate import SYNONYMS
    from occ_core.vlm.prompts import answer_segment, strip_image_token, user_segment
    texts = []
    for conv in ds.conversations.values():
        for i, (q, a) in enumerate(conversation_pairs(conv)):
            texts.append(user_segment(strip_image_token(q), i == 0) + answer_segment(a))
    texts += [" ".join([k, *v]) for k, v in SYNONYMS.items()] * 5
    return texts


def load_split(vlm: DualViewLlava, cfg: TrainConfig, split: str = "train"):
    """Pixels of every photo and render (float16, made once) and each view's conversation pairs,
    pooled over ``cfg.data_dirs`` (a from-scratch tower needs every view it can get)."""
    parts = [_load_one(vlm, cfg, d, split, _render_cache(cfg, i, d)) for i, d in enumerate(cfg.data_dirs)]
    if len(parts) == 1:
        return parts[0]
    names = [n for p in parts for n in p[0]]
    photo, render, have_render = (torch.cat([p[k] for p in parts]) for k in (1, 2, 3))
    pairs = [x for p in parts for x in p[4]]
    labels = {k: torch.cat([p[5][k] for p in parts]) for k in parts[0][5]}
    return names, photo, render, have_render, pairs, labels


def _load_val(vlm: DualViewLlava, cfg: TrainConfig):
    """The first 240 views of the first data set's val split as ``load_split`` gives them (3D-branch
    renders are made for them once, like the training views'), or None where it has none."""
    try:
        return _load_one(vlm, cfg, cfg.data_dirs[0], "val", _render_cache(cfg, 0, cfg.data_dirs[0]), limit=240)
    except OccError:
        return None


def _render_cache(cfg: TrainConfig, index: int, data: str) -> Path:
    """Render cache of the index-th data set under OUT/renders (or --render-cache)."""
    return pooled_cache_folder(cfg.render_cache or Path(cfg.out) / "renders", index, data)


def _load_one(vlm: DualViewLlava, cfg: TrainConfig, data: str, split: str, cache: Path, limit: int | None = None):
    ds = SceneDataset(data, split, with_depth=False)
    names = [n for n in ds.names if ds.conversations.get(n)][:limit]
    if not names:
        raise OccError(f"{data} has no annotations for split {split!r}")
    renders = render_paths(data, split, names, cfg.render_source, cache, progress=True, workers=cfg.render_workers)
    if cfg.render_source == "occlusion-free" and cfg.recon_share > 0 and split == "train":
        picked = np.random.default_rng(cfg.seed).random(len(names)) < cfg.recon_share
        recon = render_paths(data, split, [n for n, p in zip(names, picked) if p], "recon", cache, progress=True,
                             workers=cfg.render_workers, resolution=cfg.recon_resolution)
        renders.update({n: path for n, path in recon.items() if path is not None})  # a failure keeps the truth
        from_recon = set(n for n, path in recon.items() if path is not None)
    else:
        from_recon = set(n for n in names if renders[n] is not None) if cfg.render_source == "recon" else set()

    def pixels(paths):
        chunks = []
        for i in tqdm(range(0, len(paths), 256), desc="preprocessing images", leave=False):
            ims = []
            for p in paths[i:i + 256]:
                with Image.open(p) as im:
                    ims.append(im.convert("RGB"))
            chunks.append(vlm.pixel_values(ims).half().cpu())
        return torch.cat(chunks)

    photo = pixels([ds.ref / "rgb" / f"{n}.jpg" for n in names])
    have_render = torch.tensor([renders[n] is not None for n in names])
    render = pixels([renders[n] or ds.ref / "rgb" / f"{n}.jpg" for n in names])  # failed recon → α = 1 below
    pairs = [conversation_pairs(ds.conversations[n]) for n in names]
    metas = [ds._meta(n) for n in names]
    labels = {"category": torch.tensor([CATEGORIES.index(m["category"]) for m in metas]),
              "attributes": torch.tensor([[float(m["attributes"][k]) for k in ATTRIBUTES] for m in metas]),
              "masks": scene_masks(ds, names, photo.shape[-1])}
    size = photo.shape[-1]
    # failed reconstructions (recon source) stand in with the photo, whose masks are known
    labels["render_masks"] = scene_masks(ds, names, size, framed=True) if cfg.render_source == "occlusion-free" \
        else labels["masks"].clone()
    recon = torch.tensor([n in from_recon for n in names])
    if recon.any():
        labels["render_masks"][recon] = render_masks([renders[n] for n in names if n in from_recon], size)
    # what survives a background swap: hand + visible object in the photo; the whole object in a
    # ground-truth render; all of a 3D-branch render (already on its own plain background)
    labels["photo_fg"] = (labels["masks"][:, 1:2].float() + labels["masks"][:, 2:3].float()).clamp(0, 1).half()
    labels["render_fg"] = labels["render_masks"][:, :1].clone()
    labels["render_fg"][recon] = 1
    return names, photo, render, have_render, pairs, labels


def scene_masks(ds: SceneDataset, names: list[str], size: int, framed: bool = False) -> torch.Tensor:
    """Amodal, visible-object and hand masks of each view at ``size`` px, [V, 3, size, size] in [0, 1];
    ``framed``: cropped like the framed occlusion-free image (``occ_core.object_view``)."""
    out = torch.empty((len(names), 3, size, size), dtype=torch.float16)
    for i, n in enumerate(names):
        with Image.open(ds.sup / ds.split / "segm" / f"{n}.png") as im:
            segm = im.convert("RGB")
        if framed:
            segm = crop_to_object(segm, np.asarray(segm)[..., 0] == SEGM_VALUE)
        segm = np.asarray(segm.resize((size, size), Image.BILINEAR), dtype=np.float32) / SEGM_VALUE
        out[i] = torch.from_numpy(segm.clip(0, 1)).permute(2, 0, 1)
    return out


def render_masks(paths: list[Path], size: int) -> torch.Tensor:
    """Masks of 3D-branch renders (the object on white): amodal = not background; [V, 3, size, size]."""
    out = torch.zeros((len(paths), 3, size, size), dtype=torch.float16)
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR))
        out[i, 0] = torch.from_numpy((rgb.min(-1) < 245).astype(np.float32))
    return out


def patch_classes(masks: torch.Tensor, category: torch.Tensor, grid: int, photo: bool) -> torch.Tensor:
    """A class per vision-tower patch [B, g, g] (row-major like the patches): the object's category
    where the patch shows the object, HAND where it shows the hand, BACKGROUND elsewhere. Photo:
    the visible object; render: the whole object. ``masks``: amodal, visible, hand [B, 3, H, W]."""
    frac = F.adaptive_avg_pool2d(masks.float(), grid)
    classes = torch.full((len(category), grid, grid), BACKGROUND)
    if photo:
        classes[frac[:, 2] > 0.4] = HAND
    on_object = frac[:, 1 if photo else 0] > 0.15
    classes[on_object] = category.view(-1, 1, 1).expand_as(classes)[on_object]
    return classes


# ---- checkpoints (safetensors only) --------------------------------------------------------------
def save_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trainable = {k: v.detach().contiguous() for k, v in model.named_parameters() if v.requires_grad}
    save_file(trainable, tmp / "trainable.safetensors")
    opt = optimizer.state_dict()
    tensors = {f"{i}.{k}": (v if torch.is_tensor(v) else torch.tensor(v)).contiguous()
               for i, s in opt["state"].items() for k, v in s.items()}
    save_file(tensors, tmp / "optimizer.safetensors")
    (tmp / "state.json").write_text(json.dumps({**state, "param_groups": opt["param_groups"]}))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)  # a crash mid-save never leaves a half checkpoint under the real name


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    try:
        state = json.loads((folder / "state.json").read_text())
        weights = load_file(folder / "trainable.safetensors")
        model.load_state_dict(weights, strict=False)
        tensors = load_file(folder / "optimizer.safetensors")
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot resume from {folder}: {exc}; delete it to start over") from None
    opt_state: dict = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        opt_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": state.pop("param_groups")})
    return state


# ---- model ---------------------------------------------------------------------------------------
def initial_model(cfg: TrainConfig) -> DualViewLlava:
    if cfg.preset == "tiny":
        from occ_core.vlm.tiny import random_tiny_vlm, train_tokenizer
        tokenizer_dir = Path(cfg.out) / "tokenizer"
        if (tokenizer_dir / "tokenizer.json").exists():  # resume: the same vocabulary
            from transformers import PreTrainedTokenizerFast
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(tokenizer_dir))
        else:
            tokenizer = train_tokenizer(corpus_texts(SceneDataset(cfg.data_dirs[0], "train", with_depth=False)))
            tokenizer.save_pretrained(str(tokenizer_dir))
        return random_tiny_vlm(tokenizer, cfg.seed)
    from occ_core.vlm import load_vlm
    return load_vlm(cfg.preset)


def trainable_parameters(vlm: DualViewLlava, cfg: TrainConfig) -> list[torch.nn.Parameter]:
    if not cfg.lora:
        return [p for p in vlm.model.parameters() if p.requires_grad]
    from peft import LoraConfig, get_peft_model
    from occ_core.presets import get_preset
    targets = list(get_preset(cfg.preset).lora_targets or ("q_proj", "v_proj"))
    vlm.model.requires_grad_(False)
    vlm.model.model.language_model = get_peft_model(
        vlm.model.model.language_model, LoraConfig(r=cfg.lora_rank, lora_alpha=2 * cfg.lora_rank, target_modules=targets))
    vlm.model.model.multi_modal_projector.requires_grad_(True)
    return [p for p in vlm.model.parameters() if p.requires_grad]


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


# ---- stage 0 (tiny only): warm up the vision tower ---------------------------------------------------
class TowerProbe(torch.nn.Module):
    """The vision tower plus linear heads: category and attributes from its mean-pooled, α-blended
    features, and a class per patch (category / background / hand, from the masks). A from-scratch
    tower learns what objects look like far faster this way than through the LLM's loss (one cheap
    pass per image, a label per patch), as CLIP towers come pretrained; the heads are dropped after."""

    def __init__(self, vlm: DualViewLlava):
        super().__init__()
        self.vlm = vlm
        self.tower = vlm.model.model.vision_tower
        width = vlm.model.config.vision_config.hidden_size
        self.norm = torch.nn.LayerNorm(width)
        self.head = torch.nn.Linear(width, len(CATEGORIES) + len(ATTRIBUTES))
        self.token_head = torch.nn.Linear(width, len(CATEGORIES) + 2)  # + background, hand

    def forward(self, photo, render, alpha):
        """Image logits of the α-blend [B, 12 + 3] and per-patch logits of each view [2B, N, 14]."""
        both = self.vlm.tower_features(torch.cat([photo, render]))
        v1, v2 = both.split(photo.shape[0])
        return self.head(self.norm(blend(v1, v2, alpha).mean(1))), self.token_head(both)


def warm_up_tower(vlm: DualViewLlava, photo, render, have_render, labels, bank, cfg: TrainConfig, folder: Path) -> TowerProbe:
    probe = TowerProbe(vlm).train()
    vc = vlm.model.config.vision_config
    grid = vc.image_size // vc.patch_size
    params = [p for p in probe.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.tower_lr, weight_decay=0.05)
    steps_per_epoch = math.ceil(len(photo) / cfg.tower_batch_size)
    total = cfg.tower_epochs * steps_per_epoch
    state = {"step": 0, "elapsed_s": 0.0, "losses": []}
    if (folder / "state.json").exists():
        state = load_checkpoint(folder, probe, optimizer)
    schedule = TrainConfig(**{**asdict(cfg), "lr": cfg.tower_lr, "warmup_steps": 30})
    bar = tqdm(total=total, initial=state["step"], desc="warm up vision tower", unit="step")
    while state["step"] < total:
        step = state["step"]
        epoch, offset = divmod(step, steps_per_epoch)
        order = np.random.default_rng(10_000 + cfg.seed + epoch).permutation(len(photo))
        index = order[offset * cfg.tower_batch_size:(offset + 1) * cfg.tower_batch_size]
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + step)
        alpha = torch.rand(len(index), generator=gen)
        alpha[~have_render[index]] = 1.0
        (p1, m1), (p2, m2) = augmented_views(photo, render, labels, index, bank, gen, cfg)
        category = labels["category"][index]
        tokens = torch.cat([patch_classes(m1, category, grid, photo=True), patch_classes(m2, category, grid, photo=False)])
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total, schedule)
        logits, token_logits = probe(p1, p2, alpha)
        k = len(CATEGORIES)
        loss = F.cross_entropy(logits[:, :k], labels["category"][index]) + \
            F.binary_cross_entropy_with_logits(logits[:, k:], labels["attributes"][index]) + \
            F.cross_entropy(token_logits.flatten(0, 1), tokens.flatten())
        _optimizer_step(optimizer, params, loss, state, bar, epoch)
        if state["step"] % steps_per_epoch == 0 or state["step"] == total:
            save_checkpoint(folder, probe, optimizer, state)
    bar.close()
    return probe.eval()


@torch.no_grad()
def probe_accuracy(probe: TowerProbe, photo, render, labels, batch_size: int = 128) -> dict:
    """Category accuracy of the warmed-up tower's linear probe: photo alone (α = 1), the render
    alone (α = 0) and half-half, a cheap read of what the tower has learnt before the LLM sees it."""
    k = len(CATEGORIES)
    out = {}
    for name, alpha in (("photo", 1.0), ("render", 0.0), ("blend_0.5", 0.5)):
        pred = torch.cat([probe(photo[i:i + batch_size].float(), render[i:i + batch_size].float(),
                                torch.full((len(photo[i:i + batch_size]),), alpha))[0][:, :k].argmax(-1)
                          for i in range(0, len(photo), batch_size)])
        out[name] = round(float((pred == labels["category"]).float().mean()), 4)
    return out


def _optimizer_step(optimizer, params, loss: torch.Tensor, state: dict, bar, epoch: int) -> None:
    """One clipped optimiser step, counted and logged the same way by both training phases."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    state["step"] += 1
    state["losses"].append(round(loss.item(), 4))
    bar.update(1)
    bar.set_postfix(loss=f"{loss.item():.3f}", epoch=epoch)


def augmented_views(photo, render, labels, index, bank, gen: torch.Generator, cfg: TrainConfig):
    """(pixels, masks) of the photos and of the renders of ``index``, augmented independently
    (``occ_core.vlm.augment``), or only mirrored (the same way for both) with ``cfg.augment`` off."""
    m1, m2 = labels["masks"][index].float(), labels["render_masks"][index].float()
    p1, p2 = photo[index].float(), render[index].float()
    if not cfg.augment:
        flip = (torch.rand(len(index), generator=gen) < 0.5).view(-1, 1, 1, 1)
        return [(torch.where(flip, x.flip(-1), x), torch.where(flip, m.flip(-1), m)) for x, m in ((p1, m1), (p2, m2))]
    return [augment(p1, labels["photo_fg"][index], m1, bank, gen),
            augment(p2, labels["render_fg"][index], m2, bank, gen)]


# ---- the loop ------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> Path:
    """Train and write a loadable model folder to ``cfg.out``; returns it."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    torch.manual_seed(cfg.seed)
    vlm = initial_model(cfg)
    names, photo, render, have_render, pairs, labels = load_split(vlm, cfg)
    bank = background_bank(1024, photo.shape[-1], seed=cfg.seed + 1) if cfg.augment else None
    tower_val = None
    if cfg.preset == "tiny" and cfg.tower_epochs > 0:
        probe = warm_up_tower(vlm, photo, render, have_render, labels, bank, cfg, out / "tower_checkpoint")
        val = _load_val(vlm, cfg)
        if val is not None:
            tower_val = probe_accuracy(probe, val[1], val[2], val[5])
            print(f"tower probe, val category accuracy: {tower_val}")
    params = trainable_parameters(vlm, cfg)
    tower_ids = {id(p) for p in vlm.model.model.vision_tower.parameters()}
    groups = [{"params": [p for p in params if id(p) not in tower_ids], "scale": 1.0},
              {"params": [p for p in params if id(p) in tower_ids], "scale": 0.1}]  # keep the warmed-up tower
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  betas=(0.9, 0.98))
    steps_per_epoch = math.ceil(len(names) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    ckpt = out / "checkpoint"
    state = {"step": 0, "elapsed_s": 0.0, "losses": []}
    if (ckpt / "state.json").exists():
        state = load_checkpoint(ckpt, vlm.model, optimizer)
        print(f"resuming from {ckpt} at step {state['step']}/{total}")
    vlm.model.train()
    bar = tqdm(total=total, initial=state["step"], desc="train vlm", unit="step")
    while state["step"] < total:
        step = state["step"]
        epoch, offset = divmod(step, steps_per_epoch)
        order = np.random.default_rng(cfg.seed + epoch).permutation(len(names))  # same order after a resume
        index = order[offset * cfg.batch_size:(offset + 1) * cfg.batch_size]
        rng = random.Random(cfg.seed * 1_000_003 + step)
        ids, targets = [], []
        for i in index:
            chosen = rng.sample(pairs[i], rng.randint(1, min(cfg.turns, len(pairs[i]))))
            seq, lab = encode_turns(vlm.tokenizer, chosen, vlm.image_tokens)
            ids.append(seq)
            targets.append(lab)
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + step)
        alpha = torch.rand(len(index), generator=gen)
        alpha[~have_render[index]] = 1.0
        (p1, _), (p2, _) = augmented_views(photo, render, labels, index, bank, gen, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total, cfg) * group["scale"]
        with torch.autocast(vlm.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = vlm.loss(p1.to(vlm.device), p2.to(vlm.device), alpha, ids, targets)
        _optimizer_step(optimizer, params, loss, state, bar, epoch)
        if state["step"] % cfg.save_every == 0 or state["step"] == total:
            save_checkpoint(ckpt, vlm.model, optimizer, state)
    bar.close()
    vlm.model.eval()
    if cfg.lora:
        vlm.model.model.language_model = vlm.model.model.language_model.merge_and_unload()
    vlm.save_pretrained(out)
    log = {"config": asdict(cfg), "steps": total, "train_views": len(names), "tower_probe_val": tower_val,
           "elapsed_s_this_run": round(time.time() - started, 1), "final_loss": float(np.mean(state["losses"][-20:]))}
    (out / "train_log.json").write_text(json.dumps(log, indent=1))
    print(f"wrote {out} ({total} steps, {log['elapsed_s_this_run']:.0f} s this run, loss {log['final_loss']:.3f})")
    return out
