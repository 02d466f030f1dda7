"""chain_sum: offline one-digit chain additions and subtractions ("What is 8 + 0 - 7?"), from reasoning-gym's
`chain_sum` generator (2-3 terms of one digit), with worked solutions written here one operation per step.
A task a 135M agent solves some of the time, so the demo's accuracy table can show a difference between
heuristics (gsm_symbolic's GSM8K-level problems it almost never solves). Everything else is GSM8K's layout:
prefix, few-shot steps, `The answer is: N`, extraction, scoring.
"""

from __future__ import annotations

import re
from pathlib import Path

from common.tasks.rationalyst import gsm8k
from common.tasks.rationalyst.gsm8k import is_correct, predict, prefix, shot_steps, states_answer  # noqa: F401

DEFAULT_SPLIT, DEFAULT_SHOTS = "test", 4
SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 14}
DEFAULT_SIZE = {"train": 1000, "validation": 200, "test": 200}
TERMS = {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 1}
EXPRESSION_RE = re.compile(r"(-?\d+(?:\s*[+-]\s*\d+)+)\s*=?\s*$")


def solution(expression: str) -> tuple[str, int]:
    """One step per operation, left to right, then '#### N' (GSM8K's layout)."""
    tokens = expression.replace("+", " + ").replace(" - ", " - ").split()
    value, lines = int(tokens[0]), []
    for op, number in zip(tokens[1::2], tokens[2::2]):
        new = value + int(number) if op == "+" else value - int(number)
        lines.append(f"{value} {op} {number} = {new}")
        value = new
    return "\n".join(lines + [f"#### {value}"]), value


def load(split: str = DEFAULT_SPLIT, path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    import reasoning_gym

    if path is not None:
        raise ValueError("chain_sum is generated; it reads no file")
    if split not in SPLIT_SEEDS:
        raise ValueError(f"chain_sum: unknown split {split!r}; known: {', '.join(SPLIT_SEEDS)}")
    out = []
    for i, x in enumerate(
        reasoning_gym.create_dataset("chain_sum", size=limit or DEFAULT_SIZE[split], seed=SPLIT_SEEDS[split], **TERMS)
    ):
        expression = x["metadata"]["expression"]
        text, value = solution(expression)
        if str(value) != str(x["answer"]).strip():
            raise ValueError(f"chain_sum {split} {i}: {expression} = {value}, the generator says {x['answer']}")
        out.append(
            {
                "id": f"chain_sum-{split}-{i}",
                "question": f"What is {expression}?",
                "solution": text,
                "answer": gsm8k.extract_answer(text, "strict"),
            }
        )
    return out


def shot_pool(path: str | Path | None = None) -> list[dict]:
    return load("train", path, 40)


def mining_examples(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    return load("train", path, limit)


def reference_text(example: dict) -> str:
    return gsm8k.reference_text(example)


def document_text(example: dict) -> str:
    return gsm8k.document_text(example)
