"""Self-supervised test-time adaptation with a CLIP reward (paper §2.4; RLCF's captioning recipe).

Per question about one image, for ``steps`` steps: draw K answers in one batched sampling call →
turn each into a caption and score it with CLIP against the photo and/or the 3D render
(``occ_core.reward``) → advantage = reward − mean over the K → one AdamW step on
mean(advantage × mean token NLL) → finally answer by beam search. Only the vision→LLM mapping (the
projector; or a LoRA adapter on the LLM's attention via ``peft``) is trained.

Episodic and isolated: the parameters being adapted are a *private copy* made for the request (the
shared model's tensors are never written, so a concurrent plain answer cannot see adapted weights),
gradients are taken with ``torch.autograd.grad`` (no ``.grad`` lands on shared parameters), and the
copy and its fresh optimiser are dropped in ``finally`` — after every sample, as RLCF resets.
One lock per model serialises adaptations (bounded memory, and the seeded sampling RNG is not
interleaved between requests); the global RNG state is forked, so callers' RNG is untouched."""
from __future__ import annotations

import copy
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from occ_core.captions import answer_caption
from occ_core.errors import OccError, ReconstructionError
from occ_core.reward import ClipReward, load_reward, reward_images
from occ_core.vlm.render_cache import second_view

TARGETS = ("projector", "lora")
LORA_TARGET_MODULES = ("q_proj", "v_proj")


@dataclass(frozen=True)
class TTAConfig:
    """RLCF's recipe; ``lr`` tuned on the val split for the tiny preset (RLCF's 2e-6 is for a
    ViT-L/GPT-2 scale mapping network and does nothing to a tiny projector)."""
    steps: int = 4
    k: int = 10
    lr: float = 1e-4
    target: str = "projector"          # "projector" | "lora"
    reward_source: str = "both"        # "both" | "image" | "render"
    seed: int = 0
    temperature: float = 1.0
    lora_rank: int = 8
    sample_max_new_tokens: int = 24    # answers here are short; descriptions fit in 24 tokens

    def __post_init__(self):
        if self.target not in TARGETS:
            raise OccError(f"unknown TTA target {self.target!r}: use one of {', '.join(TARGETS)}")
        if self.steps < 0 or self.k < 2:
            raise OccError(f"TTA needs steps ≥ 0 and k ≥ 2 samples (got steps={self.steps}, k={self.k})")


@dataclass
class TTAResult:
    answer: str                 # beam-search answer after adaptation
    baseline: str               # beam-search answer before adaptation
    trace: list[dict]           # per step: {"step", "mean_reward", "samples": [[text, reward], …]}
    seconds: float
    reward_source: str = "both"  # the source actually used ("image" when there was no render)
    alpha: float = 1.0
    note: str | None = None
    timings: dict = field(default_factory=dict)


# ---- one lock per model ------------------------------------------------------------------------------
_LOCKS: "weakref.WeakKeyDictionary[torch.nn.Module, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: torch.nn.Module) -> threading.Lock:
    """The lock of ``model`` (created on first use; lives as long as the model)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock


# ---- the policy: a view of the VLM with private trainable parameters ------------------------------------
def _shallow_module_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A new module object sharing every submodule and tensor, with its own submodule table (so a
    submodule can be swapped in the copy without touching the original)."""
    clone = copy.copy(module)
    clone._modules = dict(module._modules)
    return clone


def policy_view(vlm, config: TTAConfig):
    """A ``DualViewLlava`` that shares the frozen parts of ``vlm`` and owns private copies of what
    TTA trains; returns (view, trainable parameters)."""
    view = copy.copy(vlm)
    if config.target == "projector":
        projector = copy.deepcopy(vlm.model.model.multi_modal_projector)
        params = list(projector.parameters())
        for p in params:
            p.requires_grad_(True)
        view.project = projector  # DualViewLlava routes every projection through self.project
        return view, params
    from peft import LoraConfig
    from peft.functional import inject_adapter_in_model
    language_model = copy.deepcopy(vlm.model.model.language_model)
    for p in language_model.parameters():
        p.requires_grad_(False)
    inject_adapter_in_model(LoraConfig(r=config.lora_rank, lora_alpha=2 * config.lora_rank, lora_dropout=0.0,
                                       target_modules=list(LORA_TARGET_MODULES)), language_model)
    params = [p for n, p in language_model.named_parameters() if "lora_" in n]
    for p in params:
        p.requires_grad_(True)
    inner = _shallow_module_copy(vlm.model.model)
    inner._modules["language_model"] = language_model
    outer = _shallow_module_copy(vlm.model)
    outer._modules["model"] = inner
    view.model = outer
    return view, params


# ---- adaptation ------------------------------------------------------------------------------------------
def sequence_nll(view, features: torch.Tensor, prompt: Sequence[int], sequences: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean token negative log-likelihood of each sampled answer [K], differentiable (through the
    projector). Equal to ``DualViewLlava.token_logprobs``'s, but the shared prompt (image tokens and
    question, most of the sequence) runs once at batch 1 and its KV cache is repeated for the K
    answers: about half the cost of running K full rows."""
    embeds, prompt_mask = view.embed([prompt], view.project(features), left_pad=False)
    out = view.model(inputs_embeds=embeds, attention_mask=prompt_mask, use_cache=True)
    k, t = sequences.shape
    answers = sequences.to(view.device)
    first = F.log_softmax(out.logits[:, -1].float(), -1).expand(k, -1).gather(-1, answers[:, :1])  # answer token 0
    logprobs = first
    if t > 1:
        cache = out.cache
        cache.batch_repeat_interleave(k)
        n = len(prompt)
        rest = view.model(inputs_embeds=view.model.get_input_embeddings()(answers[:, :-1]),
                          attention_mask=torch.ones(k, n + t - 1, dtype=torch.long, device=view.device),
                          position_ids=torch.arange(n, n + t - 1, device=view.device).expand(k, -1), cache=cache).logits
        later = F.log_softmax(rest.float(), -1).gather(-1, answers[:, 1:].unsqueeze(-1)).squeeze(-1)
        logprobs = torch.cat([first, later], 1)
    logprobs = logprobs * view._until_eos(answers)  # 0 after each answer's end
    return -logprobs.sum(1) / mask.to(logprobs.device).sum(1).clamp(min=1)


def reinforce_step(view, features: torch.Tensor, prompt: Sequence[int], samples, advantage: torch.Tensor,
                   params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
    """One AdamW step on mean_k(advantage_k × NLL_k). Identical samples share one forward pass
    (their advantages summed): the same gradient, far less work when the policy is confident."""
    groups: dict[tuple, list[int]] = {}
    for k, row in enumerate(samples.sequences.tolist()):
        groups.setdefault(tuple(row), []).append(k)
    first = [rows[0] for rows in groups.values()]
    weight = torch.stack([advantage[rows].sum() for rows in groups.values()]) / len(advantage)
    with torch.enable_grad():
        nll = sequence_nll(view, features, prompt, samples.sequences[first], samples.mask[first])
        grads = torch.autograd.grad((weight.to(nll.device) * nll).sum(), params)
    for p, g in zip(params, grads):
        p.grad = g
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def adapt_features(vlm, features: torch.Tensor, question: str, photo, render, reward: ClipReward,
                   config: TTAConfig = TTAConfig(), num_beams: int = 3, max_new_tokens: int = 48,
                   history: Sequence[tuple[str, str]] = ()) -> TTAResult:
    """TTA on already-blended tower features [1, N, D] (the benchmark calls this directly)."""
    started = time.perf_counter()
    images, source = reward_images(photo, render, config.reward_source)
    image_emb = reward.image_embeddings(images)
    prompt = vlm.prompt_ids(question, list(history))
    trace: list[dict] = []
    with model_lock(vlm.model):
        baseline = vlm.generate(features, [prompt], num_beams, max_new_tokens)[0]
        view, params = policy_view(vlm, config)
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(config.seed)
                for step in range(config.steps):
                    samples = view.sample(features, prompt, config.k, temperature=config.temperature,
                                          max_new_tokens=min(max_new_tokens, config.sample_max_new_tokens))
                    rewards = reward.caption_rewards([answer_caption(question, t) for t in samples.texts], image_emb)
                    advantage = (rewards - rewards.mean()).to(features.device)
                    trace.append({"step": step, "mean_reward": round(float(rewards.mean()), 4),
                                  "samples": [[t, round(float(r), 4)] for t, r in zip(samples.texts, rewards)]})
                    if float(advantage.abs().max()) == 0:
                        continue  # every sample scored the same: nothing to learn from
                    reinforce_step(view, features, prompt, samples, advantage, params, optimizer)
            answer = view.generate(features, [prompt], num_beams, max_new_tokens)[0] if config.steps else baseline
        finally:
            # episodic: the private copy and its optimiser die with the request
            optimizer.state.clear()
            del view, params, optimizer
    return TTAResult(answer, baseline, trace, time.perf_counter() - started, source)


def reward_for(pipeline) -> str:
    """The reward model that goes with a pipeline's VLM: a real preset's pretrained CLIP, else tiny."""
    from occ_core.presets import PRESETS
    name = str(getattr(pipeline.vlm.model, "name_or_path", ""))
    for preset in PRESETS.values():
        if preset.hub and preset.vlm.split("/")[-1] in name:
            return preset.name
    return "tiny"


def adapt_and_answer(pipeline, image, question: str, alpha: float | None = None, config: TTAConfig = TTAConfig(),
                     num_beams: int = 3, max_new_tokens: int = 48, reward: ClipReward | str | None = None,
                     history: Sequence[tuple[str, str]] = ()) -> TTAResult:
    """Answer ``question`` about ``image`` after test-time adaptation (see the module docstring).
    ``reward``: a ``ClipReward``, a reward preset name, or None for the pipeline's own."""
    alpha = pipeline.default_alpha if alpha is None else float(alpha)
    if not 0 <= alpha <= 1:
        raise OccError(f"α must be in [0, 1], got {alpha}")
    features, info = pipeline.features(image, alpha)
    render, note = None, info.note
    if config.reward_source != "image":
        recon = info.reconstruction
        if recon is None and not info.fallback:  # α = 1 skips the 3D branch; the reward still wants it
            try:
                recon = pipeline.reconstruct(image)
            except ReconstructionError as exc:
                note = f"no render for the reward ({exc}); scored against the photo alone"
        render = second_view(recon) if recon is not None else None  # as the VLM sees it
    if not isinstance(reward, ClipReward):
        reward = load_reward(reward or reward_for(pipeline), device=str(pipeline.vlm.device))
    result = adapt_features(pipeline.vlm, features, question, image, render, reward, config, num_beams,
                            max_new_tokens, history)
    result.alpha, result.note = info.alpha, note
    return result
