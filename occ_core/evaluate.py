"""Scoring of the four-instruction benchmark: pure functions of answer strings, no model here
(``occ_core.benchmark`` runs the model and calls these).

- "What's the object in the hand?": normalised exact match — lower case, punctuation dropped, the
  template ("the object is", "it is", articles) removed — of a category or one of its synonyms.
- Yes/no questions: the first "yes" or "no" word of the answer.
Anything unparseable counts wrong."""
from __future__ import annotations

import re
from collections import defaultdict

TASKS = ("category", "round", "long", "thin")
OCCLUSION_BINS = ("<0.3", "0.3-0.5", ">=0.5")

SYNONYMS: dict[str, tuple[str, ...]] = {
    "bottle": ("water bottle", "flask"),
    "bowl": ("dish",),
    "can": ("tin", "tin can", "soda can", "drink can"),
    "jar": ("pot", "glass jar"),
    "knife": ("blade", "kitchen knife"),
    "cellphone": ("cell phone", "phone", "mobile", "mobile phone", "smartphone", "cellular phone"),
    "camera": ("digital camera", "photo camera"),
    "remote": ("remote control", "controller", "tv remote"),
    "mug": ("cup", "coffee mug"),
    "ball": ("sphere",),
    "banana": (),
    "pen": ("ballpoint", "ballpoint pen", "marker"),
}
_LOOKUP = {name: cat for cat, names in SYNONYMS.items() for name in (cat, *names)}
_PREFIXES = ("the object in the hand is", "the object is", "the hand holds", "it is", "its", "this is", "that is")
_ARTICLES = ("a ", "an ", "the ")


def normalise(text: str) -> str:
    text = text.lower().replace("'", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def parse_category(answer: str) -> str | None:
    """The category an answer names, or None when it is not exactly one known name."""
    text = normalise(answer)
    for prefix in _PREFIXES:
        if text.startswith(prefix + " "):
            text = text[len(prefix) + 1:]
            break
    for article in _ARTICLES:
        if text.startswith(article):
            text = text[len(article):]
            break
    return _LOOKUP.get(text)


def parse_yes_no(answer: str) -> bool | None:
    """True / False from the first yes/no word; None when there is none."""
    for word in normalise(answer).split():
        if word == "yes":
            return True
        if word == "no":
            return False
    return None


def is_correct(task: str, answer: str, truth: str | bool) -> bool:
    if task == "category":
        return parse_category(answer) == truth
    return parse_yes_no(answer) == bool(truth)


def occlusion_bin(ratio: float) -> str:
    return OCCLUSION_BINS[0] if ratio < 0.3 else OCCLUSION_BINS[1] if ratio < 0.5 else OCCLUSION_BINS[2]


def accuracy(records: list[dict]) -> dict:
    """records: {"setting", "task", "bin", "correct"} → {setting: {"overall"|bin: {task: acc, "n": n}}}."""
    counts: dict = defaultdict(lambda: [0, 0])
    for r in records:
        for group in ("overall", r["bin"]):
            key = (r["setting"], group, r["task"])
            counts[key][0] += bool(r["correct"])
            counts[key][1] += 1
    table: dict = {}
    for (setting, group, task), (right, n) in counts.items():
        cell = table.setdefault(setting, {}).setdefault(group, {})
        cell[task] = right / n
        cell["n"] = n
    return table


def confusion_matrix(truths: list[str], answers: list[str]) -> tuple[list[str], list[str], list[list[int]]]:
    """Rows: true category; columns: parsed category, plus "unparsed"."""
    rows = list(SYNONYMS)
    cols = rows + ["unparsed"]
    matrix = [[0] * len(cols) for _ in rows]
    for truth, answer in zip(truths, answers):
        pred = parse_category(answer)
        matrix[rows.index(truth)][cols.index(pred if pred else "unparsed")] += 1
    return rows, cols, matrix


def markdown_table(table: dict, settings: list[str]) -> str:
    """The paper's table: one row per setting × occlusion group, one column per instruction."""
    head = "| setting | occlusion | n | " + " | ".join(TASKS) + " |\n|---|---|---|" + "---|" * len(TASKS)
    lines = [head]
    for setting in settings:
        for group in ("overall", *OCCLUSION_BINS):
            cell = table.get(setting, {}).get(group)
            if cell:
                lines.append(f"| {setting} | {group} | {cell['n']} | " +
                             " | ".join(f"{cell.get(t, float('nan')):.3f}" for t in TASKS) + " |")
    return "\n".join(lines)
