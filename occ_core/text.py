"""The five description tasks: the four benchmark instructions with their answers, and a free-form
description. One place for the wording, shared by data generation, training and evaluation."""
from __future__ import annotations

import colorsys

INSTRUCTIONS = {
    "category": "What's the object in the hand?",
    "round": "Is the object in the hand round?",
    "long": "Is the object in the hand long?",
    "thin": "Is the object in the hand thin?",
}
DESCRIBE = "Describe the object in the hand."
IMAGE_TOKEN = "<image>"


def category_answer(category: str) -> str:
    return f"The object is {category}."


def yes_no(value: bool) -> str:
    return "Yes." if value else "No."


def color_name(rgb) -> str:
    """A plain English name for an RGB colour in [0, 1] (for descriptions)."""
    h, s, v = colorsys.rgb_to_hsv(*map(float, rgb))
    if v < 0.2:
        return "black"
    if s < 0.18:
        return "white" if v > 0.8 else "grey"
    deg = h * 360
    if deg < 45 and v < 0.6 and s > 0.35:
        return "brown"
    for limit, name in ((15, "red"), (45, "orange"), (70, "yellow"), (165, "green"), (200, "cyan"),
                        (255, "blue"), (290, "purple"), (335, "pink"), (361, "red")):
        if deg < limit:
            return name
    return "red"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def description(category: str, attributes: dict, color: str | None = None) -> str:
    """e.g. "The hand holds a red bottle. It is round, long and not thin." """
    noun = f"{color} {category}" if color else category
    words = [("" if attributes[k] else "not ") + k for k in ("round", "long", "thin")]
    return f"The hand holds {_article(noun)} {noun}. It is {words[0]}, {words[1]} and {words[2]}."


def conversations(category: str, attributes: dict, color: str | None = None) -> list[dict]:
    """The five tasks as one LLaVA/InternVL conversation; the image token rides on the first turn."""
    pairs = [(INSTRUCTIONS["category"], category_answer(category))]
    pairs += [(INSTRUCTIONS[k], yes_no(attributes[k])) for k in ("round", "long", "thin")]
    pairs.append((DESCRIBE, description(category, attributes, color)))
    turns = []
    for i, (q, a) in enumerate(pairs):
        turns.append({"from": "human", "value": f"{q}\n{IMAGE_TOKEN}" if i == 0 else q})
        turns.append({"from": "gpt", "value": a})
    return turns
