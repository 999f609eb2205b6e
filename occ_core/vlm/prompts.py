"""The LLaVA-1.5 conversation format, tokenised turn by turn so training and inference agree.

``USER: <image>\\n{q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT:`` — the image rides on the first
user turn (llava-hf's format); each ``<image>`` expands to one token per vision-tower feature."""
from __future__ import annotations

from occ_core.text import IMAGE_TOKEN


def strip_image_token(text: str) -> str:
    """Our annotations put ``\\n<image>`` after the first question (InternVL style); LLaVA puts the
    image first, so take it out of the text and let ``user_segment`` place it."""
    return text.replace(IMAGE_TOKEN, "").strip()


def user_segment(question: str, first: bool) -> str:
    return f"USER: {IMAGE_TOKEN}\n{question} ASSISTANT:" if first else f"USER: {question} ASSISTANT:"


def answer_segment(answer: str) -> str:
    return f" {answer.strip()}"


def encode_turns(tokenizer, pairs: list[tuple[str, str | None]], image_tokens: int) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 where no loss) of a conversation [(question, answer), …]; a last
    answer of None leaves the sequence open for generation. ``<image>`` is expanded to
    ``image_tokens`` copies so the ids line up with the visual features."""
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    ids: list[int] = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    labels: list[int] = [-100] * len(ids)
    for i, (question, answer) in enumerate(pairs):
        prompt = tokenizer.encode(user_segment(strip_image_token(question), i == 0), add_special_tokens=False)
        expanded = []
        for t in prompt:
            expanded.extend([image_id] * image_tokens if t == image_id else [t])
        ids += expanded
        labels += [-100] * len(expanded)
        if answer is None:
            break
        reply = tokenizer.encode(answer_segment(answer), add_special_tokens=False) + [tokenizer.eos_token_id]
        ids += reply
        labels += reply
    return ids, labels


def conversation_pairs(conversations: list[dict]) -> list[tuple[str, str]]:
    """[(human, gpt), …] from a LLaVA/InternVL ``conversations`` list."""
    turns = [c["value"] for c in conversations]
    return [(turns[i], turns[i + 1]) for i in range(0, len(turns) - 1, 2)]
