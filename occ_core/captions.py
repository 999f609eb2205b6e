"""Answers → CLIP captions: the text side of the test-time-adaptation reward.

CLIP scores how well a *caption* matches an image; the VLM's answers are not captions, so each
answer is rewritten first (templates shared by the tiny CLIP's training and by the reward):

- category answer — any answer ``occ_core.evaluate.parse_category`` understands, e.g.
  "The object is knife." → ``a photo of a hand holding a knife``;
- yes/no answer to an attribute question ("Is the object in the hand round?") → a caption *pair*,
  the claim and its opposite: "Yes." → (``a photo of a hand holding a round object``,
  ``a photo of a hand holding an object that is not round``), "No." → the same pair swapped. CLIP is
  weak at negation, so the reward compares the two (softmax over the pair) instead of trusting
  the absolute score of a "not" sentence;
- anything else (a description, a free answer) → the answer text itself, lower-cased.
An answer that is neither (a yes/no question answered without yes or no, an empty answer) has no
caption and earns the lowest reward.

Training captions of the tiny CLIP (``caption_specs``) use the same templates plus
``a photo of a hand holding a <colour> <category>`` and the description task's answer."""
from __future__ import annotations

import re
from dataclasses import dataclass

from occ_core.evaluate import parse_category, parse_yes_no

ATTRIBUTES = ("round", "long", "thin")
PREFIX = "a photo of a hand holding"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def category_caption(category: str, color: str | None = None) -> str:
    noun = f"{color} {category}" if color else category
    return f"{PREFIX} {_article(noun)} {noun}"


def attribute_caption(attribute: str, value: bool) -> str:
    return f"{PREFIX} {_article(attribute)} {attribute} object" if value else f"{PREFIX} an object that is not {attribute}"


def question_attribute(question: str) -> str | None:
    """The attribute a yes/no question asks about ("Is the object in the hand round?" → "round")."""
    text = question.lower()
    if not re.match(r"^\s*(is|are|does)\b", text):
        return None
    found = [a for a in ATTRIBUTES if re.search(rf"\b{a}\b", text)]
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class AnswerCaption:
    """What the reward scores: ``text`` alone (CLIPScore), or ``text`` against ``contrast`` (the
    opposite claim; the reward is the probability of ``text`` over the pair). ``text`` None: no
    caption could be made (lowest reward)."""
    text: str | None
    contrast: str | None = None


def answer_caption(question: str, answer: str) -> AnswerCaption:
    """The caption(s) an answer to ``question`` claims about the image (see the module docstring)."""
    attribute = question_attribute(question)
    if attribute is not None:
        value = parse_yes_no(answer)
        if value is None:
            return AnswerCaption(None)
        return AnswerCaption(attribute_caption(attribute, value), attribute_caption(attribute, not value))
    category = parse_category(answer)
    if category is not None:
        return AnswerCaption(category_caption(category))
    text = " ".join(answer.strip().lower().split())
    return AnswerCaption(text or None)


# ---- training captions ----------------------------------------------------------------------------
def caption_specs(labels: dict, description: str | None) -> list[tuple[str, dict]]:
    """Every training caption true of an image with ``labels`` ({category, color, round, long, thin}),
    each with the constraints that make it true (for finding all positives in a batch)."""
    cat, color = labels["category"], labels.get("color")
    specs = [(category_caption(cat), {"category": cat})]
    if color:
        specs.append((category_caption(cat, color), {"category": cat, "color": color}))
    specs += [(attribute_caption(a, bool(labels[a])), {a: bool(labels[a])}) for a in ATTRIBUTES]
    if description:
        specs.append((" ".join(description.lower().split()),
                      {k: labels[k] for k in ("category", "color", *ATTRIBUTES) if labels.get(k) is not None}))
    return specs


def caption_true(constraints: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in constraints.items())
