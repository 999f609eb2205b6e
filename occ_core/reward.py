"""CLIP reward of test-time adaptation (paper §2.4, RLCF's captioning variant), on ``open_clip``.

Each answer becomes a caption (``occ_core.captions``: "The object is knife." → "a photo of a hand
holding a knife"; "Yes." to "Is the object in the hand round?" → "a photo of a hand holding a round
object" against "a photo of a hand holding an object that is not round") and is scored against the
input photo, the 3D branch's render, or both (averaged):

- one caption: CLIPScore = 2.5 · max(cos(image, caption), 0);
- a caption pair (yes/no answers): 2.5 · softmax(logit_scale · [cos(claim), cos(opposite)])[claim],
  since CLIP is weak at negation and only the comparison means something;
- no caption (unparseable answer): 0.

Reward models: real presets use a pretrained open_clip model (ViT-L-14 ``openai``, as RLCF),
fetched into the Hugging Face cache as safetensors; offline and not cached → one
``ModelNotAvailableError`` saying how to pre-download it. The tiny preset bundles a small open_clip
CLIP (``assets/checkpoints/tiny/clip/``: ``config.json`` + ``model.safetensors``), built from an
open_clip model config by open_clip's own ``CLIP`` class and trained here on our scenes
(``python -m occ_core train clip``, ``occ_core.clip_train``)."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from occ_core.captions import AnswerCaption, answer_caption
from occ_core.errors import CheckpointError, ModelNotAvailableError, OccError

TINY_CLIP_DIR = Path(__file__).resolve().parents[1] / "assets" / "checkpoints" / "tiny" / "clip"
CLIPSCORE_WEIGHT = 2.5  # CLIPScore's w (Hessel et al.), as in RLCF
REWARD_SOURCES = ("both", "image", "render")

# preset → (open_clip model name, pretrained tag); the reward model of each real preset
PRETRAINED_REWARD_MODELS: dict[str, tuple[str, str]] = {
    "llava-1.5-7b": ("ViT-L-14", "openai"),
    "llava-1.5-13b": ("ViT-L-14", "openai"),
}

# The tiny CLIP: a 4-layer ViT on 64 px images and a 4-layer text transformer, width 128; the
# vocabulary is open_clip's SimpleTokenizer's (bundled with open_clip, works offline).
TINY_CLIP_MODEL_CFG = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "layers": 4, "width": 128, "head_width": 32, "patch_size": 8, "mlp_ratio": 4.0},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 4, "mlp_ratio": 4.0},
}
TINY_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
TINY_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def build_tiny_clip(model_cfg: dict | None = None):
    """An untrained open_clip ``CLIP`` of the tiny config, its eval transform and tokenizer."""
    import open_clip
    from open_clip.model import CLIP
    from open_clip.tokenizer import SimpleTokenizer
    cfg = model_cfg or TINY_CLIP_MODEL_CFG
    model = CLIP(embed_dim=cfg["embed_dim"], vision_cfg=dict(cfg["vision_cfg"]), text_cfg=dict(cfg["text_cfg"]))
    size = cfg["vision_cfg"]["image_size"]
    preprocess = open_clip.image_transform(size, is_train=False, mean=TINY_CLIP_MEAN, std=TINY_CLIP_STD)
    tokenizer = SimpleTokenizer(context_length=cfg["text_cfg"]["context_length"])
    return model, preprocess, tokenizer


class ClipReward:
    """An open_clip model scoring captions against images (no gradients; thread-safe)."""

    def __init__(self, model, preprocess, tokenizer, name: str, device: str = "cpu"):
        self.model = model.eval().to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.preprocess, self.tokenizer, self.name, self.device = preprocess, tokenizer, name, device
        self._text_cache: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, preset_or_path: str = "tiny", device: str = "cpu") -> "ClipReward":
        """``tiny`` (bundled), a folder with ``config.json`` + ``model.safetensors``, a real preset
        name (``llava-1.5-7b`` …) or ``open_clip:MODEL/TAG`` (e.g. ``open_clip:ViT-B-32/openai``)."""
        if preset_or_path == "tiny":
            return cls.from_folder(TINY_CLIP_DIR, device)
        if preset_or_path in PRETRAINED_REWARD_MODELS:
            return cls.from_open_clip(*PRETRAINED_REWARD_MODELS[preset_or_path], device=device)
        if preset_or_path.startswith("open_clip:"):
            name, _, tag = preset_or_path[len("open_clip:"):].partition("/")
            return cls.from_open_clip(name, tag or "openai", device=device)
        if Path(preset_or_path).is_dir():
            return cls.from_folder(preset_or_path, device)
        raise OccError(f"unknown reward model {preset_or_path!r}: use tiny, a real preset "
                       f"({', '.join(PRETRAINED_REWARD_MODELS)}), open_clip:MODEL/TAG or a folder")

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "cpu") -> "ClipReward":
        from safetensors.torch import load_file
        folder = Path(folder)
        if not (folder / "config.json").exists() or not (folder / "model.safetensors").exists():
            raise CheckpointError(f"{folder} holds no CLIP reward model (config.json + model.safetensors); "
                                  "train one with `python -m occ_core train clip --data DIR --out DIR`")
        meta = json.loads((folder / "config.json").read_text())
        model, preprocess, tokenizer = build_tiny_clip(meta["model_cfg"])
        state = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{folder}/model.safetensors does not match its config "
                                  f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        return cls(model, preprocess, tokenizer, str(folder), device)

    @classmethod
    def from_open_clip(cls, model_name: str, tag: str, device: str = "cpu") -> "ClipReward":
        """A pretrained open_clip model, its safetensors weights from the Hugging Face cache."""
        import open_clip
        from huggingface_hub import constants, hf_hub_download
        from open_clip.pretrained import get_pretrained_cfg
        cfg = get_pretrained_cfg(model_name, tag)
        hub = cfg.get("hf_hub", "").rstrip("/")
        if not hub:
            raise OccError(f"open_clip has no Hugging Face weights for {model_name}/{tag}")
        repo = hub.split("/")[0] + "/" + hub.split("/")[1]
        try:  # safetensors only: never unpickle
            weights = hf_hub_download(repo, "open_clip_model.safetensors", local_files_only=_offline())
        except Exception as exc:  # offline, not cached, no network: all mean "not available here"
            raise ModelNotAvailableError(
                f"CLIP reward model {model_name} ({tag}, {repo}) is not in the local Hugging Face cache "
                f"({constants.HF_HUB_CACHE}) and cannot be downloaded here ({type(exc).__name__}); pre-download it "
                f"on a machine with network with `hf download {repo} open_clip_model.safetensors` "
                f"(or `python -c \"import open_clip; open_clip.create_model('{model_name}', pretrained='{tag}')\"`) "
                f"and copy the cache, or use --reward tiny") from None
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=weights, device=device)
        return cls(model, preprocess, open_clip.get_tokenizer(model_name), f"{model_name}/{tag}", device)

    # ---- embeddings ----------------------------------------------------------------------------
    @torch.no_grad()
    def image_embeddings(self, images: Sequence[Image.Image | np.ndarray]) -> torch.Tensor:
        """Unit-norm image embeddings [B, E]."""
        pil = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in images]
        px = torch.stack([self.preprocess(im.convert("RGB")) for im in pil]).to(self.device)
        return self.model.encode_image(px, normalize=True).float()

    @torch.no_grad()
    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm caption embeddings [T, E] (cached: answers repeat a lot)."""
        with self._lock:
            todo = sorted({t for t in texts if t not in self._text_cache})
        if todo:
            emb = self.model.encode_text(self.tokenizer(todo).to(self.device), normalize=True).float()
            with self._lock:
                self._text_cache.update(zip(todo, emb))
        with self._lock:
            return torch.stack([self._text_cache[t] for t in texts])

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp())

    # ---- rewards -------------------------------------------------------------------------------
    def caption_rewards(self, captions: Sequence[AnswerCaption], image_emb: torch.Tensor) -> torch.Tensor:
        """Reward of each caption [A] against each image embedding [I, E], averaged over the images."""
        texts = sorted({t for c in captions for t in (c.text, c.contrast) if t})
        if not texts:
            return torch.zeros(len(captions))
        index = {t: i for i, t in enumerate(texts)}
        cos = image_emb @ self.text_embeddings(texts).T  # [I, T]
        out = torch.zeros(len(captions))
        for a, cap in enumerate(captions):
            if cap.text is None:
                continue
            claim = cos[:, index[cap.text]]
            if cap.contrast is None:
                out[a] = CLIPSCORE_WEIGHT * claim.clamp(min=0).mean()
            else:
                pair = torch.stack([claim, cos[:, index[cap.contrast]]], -1) * self.logit_scale
                out[a] = CLIPSCORE_WEIGHT * pair.softmax(-1)[:, 0].mean()
        return out

    def rewards(self, question: str, answers: Sequence[str], images: Sequence[Image.Image | np.ndarray]) -> torch.Tensor:
        """Reward [A] of each answer to ``question`` about ``images`` (photo and/or render, averaged)."""
        return self.caption_rewards([answer_caption(question, a) for a in answers], self.image_embeddings(images))


def reward_images(photo, render, source: str) -> tuple[list, str]:
    """The images a reward source scores against, and the source actually used (``image`` when a
    render was asked for but the 3D branch gave none)."""
    if source not in REWARD_SOURCES:
        raise OccError(f"unknown reward source {source!r}: use one of {', '.join(REWARD_SOURCES)}")
    if render is None or source == "image":
        return [photo], "image"
    return ([render], "render") if source == "render" else ([photo, render], "both")


_DEFAULT_REWARDS: dict[str, ClipReward] = {}
_DEFAULT_LOCK = threading.Lock()


def load_reward(preset_or_path: str = "tiny", device: str = "cpu") -> ClipReward:
    """The reward model of a preset, loaded once per process."""
    key = f"{preset_or_path}@{device}"
    with _DEFAULT_LOCK:
        if key not in _DEFAULT_REWARDS:
            _DEFAULT_REWARDS[key] = ClipReward.from_pretrained(preset_or_path, device)
        return _DEFAULT_REWARDS[key]
