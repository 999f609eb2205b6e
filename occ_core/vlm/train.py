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
from occ_core.scenes.dataset import SceneDataset
from occ_core.vlm.model import DualViewLlava, blend
from occ_core.scenes.layout import SEGM_VALUE
from occ_core.scenes.objects import CATEGORIES
from occ_core.vlm.prompts import conversation_pairs, encode_turns
from occ_core.vlm.render_cache import render_paths

ATTRIBUTES = ("round", "long", "thin")
BACKGROUND, HAND = len(CATEGORIES), len(CATEGORIES) + 1  # extra patch classes


@dataclass
class TrainConfig:
    data: str
    out: str
    preset: str = "tiny"
    render_source: str = "recon"
    render_cache: str | None = None   # default: <out>/renders
    tower_epochs: int = 12           # tiny only: warm up the vision tower on the labels first
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
    threads: int = 1                 # 1 beats 2 when the 2 cores are shared: OpenMP barriers stall


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
    """Pixels of every photo and render (float16, made once) and each view's conversation pairs."""
    ds = SceneDataset(cfg.data, split, with_depth=False)
    names = [n for n in ds.names if ds.conversations.get(n)]
    if not names:
        raise OccError(f"{cfg.data} has no annotations for split {split!r}")
    renders = render_paths(cfg.data, split, names, cfg.render_source, cfg.render_cache or Path(cfg.out) / "renders",
                           progress=True)

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
              "attributes": torch.tensor([[float(m["attributes"][k]) for k in ATTRIBUTES] for m in metas])}
    grid = vlm.model.config.vision_config.image_size // vlm.model.config.vision_config.patch_size
    labels["photo_tokens"], labels["render_tokens"] = token_targets(ds, names, labels["category"], grid)
    return names, photo, render, have_render, pairs, labels


def token_targets(ds: SceneDataset, names: list[str], category: torch.Tensor, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A class per vision-tower patch: the object's category where the patch shows the object,
    HAND where it shows the hand, BACKGROUND elsewhere. Photo: visible object; render: whole object."""
    photo_t, render_t = [], []
    for n, cat in zip(names, category.tolist()):
        with Image.open(ds.sup / ds.split / "segm" / f"{n}.png") as im:
            segm = torch.from_numpy(np.asarray(im.convert("RGB")) == SEGM_VALUE).permute(2, 0, 1).float()
        frac = F.adaptive_avg_pool2d(segm[None], grid)[0]  # [3, g, g]: amodal, visible, hand
        photo = torch.full((grid, grid), BACKGROUND)
        photo[frac[2] > 0.4] = HAND
        photo[frac[1] > 0.15] = cat
        render = torch.full((grid, grid), BACKGROUND)
        render[frac[0] > 0.15] = cat
        photo_t.append(photo)
        render_t.append(render)
    return torch.stack(photo_t), torch.stack(render_t)  # [V, g, g]; row-major like the patches


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
            tokenizer = train_tokenizer(corpus_texts(SceneDataset(cfg.data, "train", with_depth=False)))
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


def warm_up_tower(vlm: DualViewLlava, photo, render, have_render, labels, cfg: TrainConfig, folder: Path) -> None:
    probe = TowerProbe(vlm).train()
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
        flip = torch.rand(len(index), generator=gen) < 0.5
        p1, p2 = mirror(photo[index].float(), flip), mirror(render[index].float(), flip)
        tokens = torch.cat([mirror(labels["photo_tokens"][index], flip), mirror(labels["render_tokens"][index], flip)])
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


def mirror(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Left-right mirror of the rows where ``flip`` (category and round/long/thin survive a mirror);
    works on images [B, C, H, W] and patch grids [B, g, g] alike."""
    x = x.clone()
    x[flip] = x[flip].flip(-1)
    return x


def augment(p1: torch.Tensor, p2: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    flip = torch.rand(len(p1), generator=gen) < 0.5
    return mirror(p1, flip), mirror(p2, flip)


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
    if cfg.preset == "tiny" and cfg.tower_epochs > 0:
        warm_up_tower(vlm, photo, render, have_render, labels, cfg, out / "tower_checkpoint")
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
        p1, p2 = augment(photo[index].float(), render[index].float(), gen)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total, cfg) * group["scale"]
        loss = vlm.loss(p1.to(vlm.device), p2.to(vlm.device), alpha, ids, targets)
        _optimizer_step(optimizer, params, loss, state, bar, epoch)
        if state["step"] % cfg.save_every == 0 or state["step"] == total:
            save_checkpoint(ckpt, vlm.model, optimizer, state)
    bar.close()
    vlm.model.eval()
    if cfg.lora:
        vlm.model.model.language_model = vlm.model.model.language_model.merge_and_unload()
    vlm.save_pretrained(out)
    log = {"config": asdict(cfg), "steps": total, "train_views": len(names),
           "elapsed_s_this_run": round(time.time() - started, 1), "final_loss": float(np.mean(state["losses"][-20:]))}
    (out / "train_log.json").write_text(json.dumps(log, indent=1))
    print(f"wrote {out} ({total} steps, {log['elapsed_s_this_run']:.0f} s this run, loss {log['final_loss']:.3f})")
    return out
