"""LLaVA with two views of one object (paper Eq. 3): ``v = α·v1 + (1−α)·v2`` on vision-tower
features, then the projector, then the LLM through ``inputs_embeds``.

We run ``vision_tower`` and ``multi_modal_projector`` ourselves (LLaVA's ``get_image_features``
would project each view separately), and place the projected features at the ``<image>`` token
positions. Answers come from beam search; ``sample`` draws K answers with their log-probs in one
batched call and ``token_logprobs`` recomputes them with gradients (test-time adaptation)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from occ_core.errors import CheckpointError
from occ_core.vlm.prompts import encode_turns

ImageLike = Image.Image | np.ndarray


def blend(v1: torch.Tensor, v2: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """Eq. 3 on tower features [B, N, D]; ``alpha`` is a number or one value per example [B]."""
    if not torch.is_tensor(alpha):
        alpha = torch.tensor(float(alpha))
    alpha = alpha.to(v1.dtype).to(v1.device).reshape(-1, 1, 1)
    return alpha * v1 + (1 - alpha) * v2


@dataclass
class Samples:
    """K sampled answers to one prompt: token ids [K, T], their log-probs under the model [K, T]
    (temperature 1, 0 after the end), a mask of real tokens [K, T], and the decoded texts."""
    sequences: torch.Tensor
    logprobs: torch.Tensor
    mask: torch.Tensor
    texts: list[str]


class DualViewLlava:
    """A ``LlavaForConditionalGeneration`` with its tokenizer and image processor, fed two views."""

    def __init__(self, model, tokenizer, image_processor):
        self.model, self.tokenizer, self.image_processor = model, tokenizer, image_processor
        cfg = model.config
        self.image_token_id = cfg.image_token_id
        self.feature_layer = cfg.vision_feature_layer
        self.select_strategy = cfg.vision_feature_select_strategy
        vc = cfg.vision_config
        # one LLM token per tower feature; "default" drops CLIP's CLS token as LLaVA does
        self.image_tokens = (vc.image_size // vc.patch_size) ** 2 + (self.select_strategy == "full")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype = torch.float32, device: str = "cpu") -> "DualViewLlava":
        """Load from a local folder (see ``occ_core.vlm.loading.resolve_model_dir`` for Hub ids)."""
        from transformers import AutoImageProcessor, AutoTokenizer, LlavaForConditionalGeneration
        try:
            model = LlavaForConditionalGeneration.from_pretrained(str(path), dtype=dtype, use_safetensors=True)
            tokenizer = AutoTokenizer.from_pretrained(str(path))
            image_processor = AutoImageProcessor.from_pretrained(str(path))
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"cannot load a LLaVA model from {path}: {exc}") from None
        return cls(model.eval().to(device), tokenizer, image_processor)

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(str(path))  # safetensors
        self.tokenizer.save_pretrained(str(path))
        self.image_processor.save_pretrained(str(path))

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ---- vision: tower → blend → projector ---------------------------------------------------------
    def pixel_values(self, images: Sequence[ImageLike]) -> torch.Tensor:
        pil = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in images]
        px = self.image_processor([im.convert("RGB") for im in pil], return_tensors="pt")["pixel_values"]
        return px.to(self.device, self.model.dtype)

    def tower_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The vision tower's features at LLaVA's chosen layer(s), [B, N, D] (v1 or v2 of Eq. 3)."""
        out = self.model.model.vision_tower(pixel_values, output_hidden_states=True, return_dict=True)
        layers = self.feature_layer if isinstance(self.feature_layer, (list, tuple)) else [self.feature_layer]
        hidden = [out.hidden_states[i] for i in layers]
        if self.select_strategy == "default":
            hidden = [h[:, 1:] for h in hidden]
        return torch.cat(hidden, dim=-1)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.model.multi_modal_projector(features)

    def dual_features(self, images: Sequence[ImageLike], renders: Sequence[ImageLike | None] | None,
                      alpha: float | Sequence[float]) -> torch.Tensor:
        """Blended tower features of photos and renders. Where α = 1 the render is not even encoded,
        so a missing render (failed reconstruction) is fine there."""
        alphas = torch.as_tensor(alpha if isinstance(alpha, (list, tuple)) else [alpha] * len(images), dtype=torch.float32)
        v1 = self.tower_features(self.pixel_values(images))
        if bool((alphas == 1).all()):
            return v1
        if renders is None or any(r is None for r, a in zip(renders, alphas) if a != 1):
            raise ValueError("α < 1 needs a render for every such image")
        v2 = torch.zeros_like(v1)
        need = [i for i, a in enumerate(alphas) if a != 1]
        v2[need] = self.tower_features(self.pixel_values([renders[i] for i in need]))
        return blend(v1, v2, alphas)

    # ---- text ----------------------------------------------------------------------------------
    def prompt_ids(self, question: str, history: Sequence[tuple[str, str]] = ()) -> list[int]:
        """Token ids of a conversation so far plus the new question, open for the answer."""
        return encode_turns(self.tokenizer, [*history, (question, None)], self.image_tokens)[0]

    def embed(self, sequences: Sequence[Sequence[int]], visual: torch.Tensor, left_pad: bool = True):
        """``inputs_embeds`` and attention mask of a batch; ``visual`` [B, N, H] (projected) replaces
        the ``<image>`` tokens of each row. Left padding for generation, right for training."""
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            span = slice(width - len(seq), width) if left_pad else slice(0, len(seq))
            ids[row, span] = torch.as_tensor(list(seq))
            mask[row, span] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        embeds = self.model.get_input_embeddings()(ids)
        image_mask = (ids == self.image_token_id) & (mask == 1)
        if int(image_mask.sum()) != visual.shape[0] * visual.shape[1]:
            raise ValueError(f"{int(image_mask.sum())} <image> tokens for {visual.shape[0]}×{visual.shape[1]} features")
        embeds = embeds.masked_scatter(image_mask.unsqueeze(-1), visual.to(embeds.dtype))
        return embeds, mask

    def _position_ids(self, mask: torch.Tensor) -> torch.Tensor:
        return (mask.cumsum(-1) - 1).clamp(min=0)

    # ---- answers -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, features: torch.Tensor, prompts: Sequence[Sequence[int]], num_beams: int = 3,
                 max_new_tokens: int = 32) -> list[str]:
        """Beam-search answers for a batch: ``features`` are blended tower features [B, N, D]."""
        embeds, mask = self.embed(prompts, self.project(features))
        out = self.model.generate(inputs_embeds=embeds, attention_mask=mask, num_beams=num_beams, do_sample=False,
                                  max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                  eos_token_id=self.tokenizer.eos_token_id)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    @torch.no_grad()
    def answer(self, images: Sequence[ImageLike], questions: Sequence[str], renders: Sequence[ImageLike | None] | None = None,
               alpha: float | Sequence[float] = 1.0, histories: Sequence[Sequence[tuple[str, str]]] | None = None,
               num_beams: int = 3, max_new_tokens: int = 32) -> list[str]:
        """One answer per (image, question): Eq. 3 blend, then beam search, batched."""
        features = self.dual_features(images, renders, alpha)
        histories = histories or [()] * len(questions)
        prompts = [self.prompt_ids(q, h) for q, h in zip(questions, histories)]
        return self.generate(features, prompts, num_beams, max_new_tokens)

    # ---- sampling and log-probs (test-time adaptation) ------------------------------------------
    @torch.no_grad()
    def sample(self, features: torch.Tensor, prompt: Sequence[int], k: int, temperature: float = 1.0,
               top_p: float = 1.0, max_new_tokens: int = 32) -> Samples:
        """K answers to one prompt in ONE batched ``generate`` call, with per-token log-probs.
        ``features``: blended tower features of the one image, [1, N, D]."""
        embeds, mask = self.embed([prompt], self.project(features))
        out = self.model.generate(inputs_embeds=embeds, attention_mask=mask, do_sample=True, num_beams=1,
                                  num_return_sequences=k, temperature=temperature, top_p=top_p, top_k=0,
                                  max_new_tokens=max_new_tokens, return_dict_in_generate=True, output_logits=True,
                                  pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id)
        seqs = out.sequences
        logits = torch.stack(out.logits, dim=1).float()  # raw (pre-temperature) logits [K, T, V]
        logprobs = F.log_softmax(logits, -1).gather(-1, seqs.unsqueeze(-1)).squeeze(-1)
        token_mask = self._until_eos(seqs)
        texts = [t.strip() for t in self.tokenizer.batch_decode(seqs, skip_special_tokens=True)]
        return Samples(seqs, logprobs * token_mask, token_mask, texts)

    def _until_eos(self, seqs: torch.Tensor) -> torch.Tensor:
        """1 for each token up to and including the first end-of-sequence, 0 after it."""
        is_eos = seqs == self.tokenizer.eos_token_id
        after = (is_eos.cumsum(-1) - is_eos.long()) > 0
        return (~after).to(torch.float32)

    def token_logprobs(self, features: torch.Tensor, prompt: Sequence[int], sequences: torch.Tensor) -> torch.Tensor:
        """Log-probs [K, T] of given answer tokens under the model, differentiable (through the
        projector and the LLM); 0 after each sequence's end. ``features``: [1, N, D] or [K, N, D]."""
        k = sequences.shape[0]
        visual = self.project(features).expand(k, -1, -1)
        rows = [list(prompt) + s.tolist() for s in sequences]
        embeds, mask = self.embed(rows, visual, left_pad=False)
        logits = self.model(inputs_embeds=embeds, attention_mask=mask).logits
        n = len(prompt)
        step_logits = logits[:, n - 1:-1].float()  # position t predicts token t+1
        lp = F.log_softmax(step_logits, -1).gather(-1, sequences.to(self.device).unsqueeze(-1)).squeeze(-1)
        return lp * self._until_eos(sequences.to(self.device))

    # ---- training ------------------------------------------------------------------------------
    def loss(self, photo_pixels: torch.Tensor, render_pixels: torch.Tensor, alpha: torch.Tensor,
             ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]]) -> torch.Tensor:
        """Mean next-token cross-entropy on answer tokens, with Eq. 3 at per-example α."""
        both = self.tower_features(torch.cat([photo_pixels, render_pixels]))
        v1, v2 = both.split(photo_pixels.shape[0])
        embeds, mask = self.embed(ids, self.project(blend(v1, v2, alpha)), left_pad=False)
        target = torch.full(mask.shape, -100, dtype=torch.long, device=self.device)
        for row, lab in enumerate(labels):
            target[row, :len(lab)] = torch.as_tensor(list(lab))
        logits = self.model(inputs_embeds=embeds, attention_mask=mask).logits
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target[:, 1:].flatten(), ignore_index=-100)
