"""OccPipeline: the whole method in one place — reconstruct → encode both views → blend → answer.

A thin object of named components (diffusers-style): ``vlm`` (a ``DualViewLlava``: model, tokenizer,
image processor) and ``reconstructor`` (the 3D branch, loaded lazily). Reconstructions and tower
features are cached by image content, so a new α or a new question never rebuilds them. When the
3D branch fails, the answer falls back to α = 1 (photo only) and says so."""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from occ_core.errors import OccError, ReconstructionError
from occ_core.vlm.model import DualViewLlava, ImageLike, blend
from occ_core.vlm.render_cache import second_view

DEFAULT_ALPHA = 0.5
SETTINGS_FILE = "occ_settings.json"  # next to the VLM weights: {"alpha": α chosen on val}


@dataclass
class Answer:
    """An answer and how it was made."""
    text: str
    alpha: float                      # the α actually used
    requested_alpha: float
    fallback: bool = False            # True: the 3D branch failed and α = 1 was used instead
    note: str | None = None           # why, when fallback
    reconstruction: object | None = None  # the Reconstruction used (None at α = 1 or on failure)
    timings: dict = field(default_factory=dict)


def image_key(image: ImageLike) -> str:
    """Content hash of an image (pixels and shape, not the file or object it came from)."""
    arr = np.ascontiguousarray(np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image))
    return hashlib.sha256(str(arr.shape).encode() + arr.tobytes()).hexdigest()


class _Entry:
    def __init__(self):
        self.reconstruction = None
        self.error: str | None = None
        self.photo_features: torch.Tensor | None = None
        self.render_features: torch.Tensor | None = None


class OccPipeline:
    def __init__(self, vlm: DualViewLlava, reconstructor=None, recon_source: str = "tiny",
                 default_alpha: float = DEFAULT_ALPHA, cache_size: int = 64):
        self.vlm = vlm
        self._reconstructor = reconstructor
        self.recon_source = recon_source
        self.default_alpha = default_alpha
        self.cache_size = cache_size
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self.stats = {"reconstructions": 0, "cache_hits": 0}

    @classmethod
    def from_pretrained(cls, preset_or_path: str = "tiny", device: str = "cpu", reconstructor=None) -> "OccPipeline":
        """Components of a preset (``tiny``, ``llava-1.5-7b`` …) or a VLM folder; the reconstructor
        can be injected (any object with ``.reconstruct(PIL.Image) -> Reconstruction``)."""
        from occ_core.presets import get_preset
        from occ_core.vlm import load_vlm
        preset = get_preset(preset_or_path)
        vlm = load_vlm(preset_or_path, device=device)
        alpha = DEFAULT_ALPHA
        settings = Path(str(getattr(vlm.model, "name_or_path", ""))) / SETTINGS_FILE
        if settings.exists():
            alpha = float(json.loads(settings.read_text()).get("alpha", DEFAULT_ALPHA))
        return cls(vlm, reconstructor, preset.recon, alpha)

    @property
    def tokenizer(self):
        return self.vlm.tokenizer

    @property
    def reconstructor(self):
        """The 3D branch, loaded on first use; loading problems surface as ReconstructionError."""
        if self._reconstructor is None:
            try:
                from occ_core.recon import Reconstructor
            except ImportError as exc:
                raise ReconstructionError(f"the 3D branch is not available ({exc})") from None
            try:
                self._reconstructor = Reconstructor.from_pretrained(self.recon_source)
            except OccError as exc:
                raise ReconstructionError(f"the 3D branch could not be loaded: {exc}") from None
        return self._reconstructor

    # ---- cache ---------------------------------------------------------------------------------
    def _entry(self, key: str) -> _Entry:
        if key in self._cache:
            self._cache.move_to_end(key)
            self.stats["cache_hits"] += 1
            return self._cache[key]
        entry = self._cache[key] = _Entry()
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def reconstruct(self, image: ImageLike):
        """The 3D reconstruction of ``image`` (cached by content; failures are cached too)."""
        entry = self._entry(image_key(image))
        return self._reconstruct(image, entry)

    def _reconstruct(self, image: ImageLike, entry: _Entry):
        if entry.reconstruction is None and entry.error is None:
            pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
            try:
                self.stats["reconstructions"] += 1
                entry.reconstruction = self.reconstructor.reconstruct(pil.convert("RGB"))
            except ReconstructionError as exc:
                entry.error = str(exc)
        if entry.error is not None:
            raise ReconstructionError(entry.error)
        return entry.reconstruction

    # ---- answering -----------------------------------------------------------------------------
    def features(self, image: ImageLike, alpha: float) -> tuple[torch.Tensor, Answer]:
        """Blended tower features [1, N, D] of one image at ``alpha`` (Eq. 3), and the answer's
        bookkeeping (α used, fallback note)."""
        entry = self._entry(image_key(image))
        info = Answer("", alpha, alpha)
        with torch.no_grad():
            if entry.photo_features is None:
                entry.photo_features = self.vlm.tower_features(self.vlm.pixel_values([image]))
            if alpha >= 1:
                return entry.photo_features, info
            try:
                recon = self._reconstruct(image, entry)
            except ReconstructionError as exc:
                info.alpha, info.fallback = 1.0, True
                info.note = f"3D reconstruction failed ({exc}); answered from the photo alone (α = 1)"
                return entry.photo_features, info
            if entry.render_features is None:
                entry.render_features = self.vlm.tower_features(self.vlm.pixel_values([second_view(recon)]))
            info.reconstruction = recon
            return blend(entry.photo_features, entry.render_features, alpha), info

    def answer(self, image: ImageLike, question: str, alpha: float | None = None, num_beams: int = 3,
               max_new_tokens: int = 48) -> Answer:
        """One question about one image."""
        return self.chat(image, [], question, alpha, num_beams, max_new_tokens)

    def chat(self, image: ImageLike, history: Sequence[tuple[str, str]], message: str, alpha: float | None = None,
             num_beams: int = 3, max_new_tokens: int = 48) -> Answer:
        """The next assistant turn of a conversation about ``image``; ``history`` is [(user, assistant), …]."""
        alpha = self.default_alpha if alpha is None else float(alpha)
        if not 0 <= alpha <= 1:
            raise OccError(f"α must be in [0, 1], got {alpha}")
        features, info = self.features(image, alpha)
        info.text = self.vlm.generate(features, [self.vlm.prompt_ids(message, list(history))], num_beams, max_new_tokens)[0]
        return info
