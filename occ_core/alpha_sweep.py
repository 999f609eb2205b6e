"""The answer to one question across α (Eq. 3's blend weight), with how sure the model is.

For each α: the beam-search answer, its log-probability under the model (summed over tokens, and
as a per-token geometric mean in [0, 1]) and, for a yes/no question, P(yes) = p("Yes.") / (p("Yes.")
+ p("No.")). The photo and render features come from the pipeline's cache, so a sweep reconstructs
the object once."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from occ_core.errors import OccError
from occ_core.vlm.prompts import answer_segment

YES_NO_OPENERS = ("is", "are", "does", "do", "can", "could", "was", "were", "has", "have", "will", "would", "should")


@dataclass
class SweepPoint:
    alpha: float               # the α asked for
    used_alpha: float          # the α used (1 where the 3D branch failed)
    answer: str
    logprob: float             # log p(answer | image, question), summed over the answer's tokens
    confidence: float          # exp(mean token log-prob): 1 = every token certain
    p_yes: float | None        # P(yes) among {yes, no}; None unless a yes/no question


@dataclass
class Sweep:
    question: str
    points: list[SweepPoint] = field(default_factory=list)
    note: str | None = None    # e.g. the 3D branch failed, so every α fell back to 1


def is_yes_no(question: str) -> bool:
    words = question.strip().lower().split()
    return bool(words) and words[0] in YES_NO_OPENERS


def default_alphas(n: int = 11) -> list[float]:
    return [round(i / (n - 1), 4) for i in range(n)]


def _answer_ids(tokenizer, text: str) -> list[int]:
    """The tokens the model emits for ``text`` as an answer: the training format's leading space, then EOS."""
    return tokenizer.encode(answer_segment(text), add_special_tokens=False) + [tokenizer.eos_token_id]


@torch.no_grad()
def score_answers(vlm, features: torch.Tensor, prompt: Sequence[int], answers: Sequence[str]) -> list[tuple[float, int]]:
    """(summed log-prob, token count) of each answer text given blended features and a prompt."""
    rows = [_answer_ids(vlm.tokenizer, a) for a in answers]
    width = max(len(r) for r in rows)
    eos = vlm.tokenizer.eos_token_id
    seqs = torch.tensor([r + [eos] * (width - len(r)) for r in rows], dtype=torch.long)
    lp = vlm.token_logprobs(features, list(prompt), seqs)  # 0 after each answer's first EOS
    return [(float(lp[i].sum()), len(rows[i])) for i in range(len(rows))]


def alpha_sweep(pipeline, image, question: str, alphas: Sequence[float] | None = None, num_beams: int = 3,
                max_new_tokens: int = 32, progress: Callable[[int, int], None] | None = None) -> Sweep:
    """Answer ``question`` about ``image`` at each α and score each answer (see the module docstring)."""
    question = question.strip()
    if not question:
        raise OccError("the question is empty: type a question about the object in the hand")
    alphas = list(default_alphas() if alphas is None else alphas)
    if not alphas or any(not 0 <= a <= 1 for a in alphas):
        raise OccError(f"α values must lie in [0, 1], got {alphas}")
    vlm = pipeline.vlm
    prompt = vlm.prompt_ids(question)
    yes_no = is_yes_no(question)
    sweep = Sweep(question)
    for i, alpha in enumerate(alphas):
        features, info = pipeline.features(image, float(alpha))
        if info.fallback:
            sweep.note = info.note
        text = vlm.generate(features, [prompt], num_beams, max_new_tokens)[0]
        (logprob, n), *yn = score_answers(vlm, features, prompt, [text, *(["Yes.", "No."] if yes_no else [])])
        p_yes = None
        if yes_no:
            ly, ln = yn[0][0], yn[1][0]
            p_yes = 1.0 / (1.0 + math.exp(min(ln - ly, 700.0)))
        sweep.points.append(SweepPoint(float(alpha), info.alpha, text, logprob, math.exp(logprob / max(n, 1)), p_yes))
        if progress is not None:
            progress(i + 1, len(alphas))
    return sweep
