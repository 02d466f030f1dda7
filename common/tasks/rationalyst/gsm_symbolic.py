"""gsm_symbolic: offline GSM8K-style problems with worked solutions, from reasoning-gym's generator (100
GSM8K-derived templates, Apple's GSM-Symbolic). It installs from PyPI, so the demo and the tests need no Hub.

Each split is its own seeded stream, so the problems mined (train) are not those answered (test), except by
chance: the templates' variables have small ranges (3 of the first 100 test problems are among the first 300
train ones). Item i of a split does not depend on how many are drawn. Solutions are GSM8K's layout (steps, then `#### N`), so
everything else is GSM8K's: prefix, few-shot steps, extraction, scoring.
"""

from __future__ import annotations

from pathlib import Path

from common.tasks.rationalyst import gsm8k
from common.tasks.rationalyst.gsm8k import (  # noqa: F401
    document_text,
    is_correct,
    predict,
    prefix,
    reference_text,
    shot_steps,
    states_answer,
)

DEFAULT_SPLIT, DEFAULT_SHOTS = "test", gsm8k.DEFAULT_SHOTS
SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 14}  # test: the reference's seed, as before the split
DEFAULT_SIZE = {"train": 7473, "validation": 500, "test": 1319}  # GSM8K's sizes
SHOT_POOL_SIZE = 40


def load(split: str = DEFAULT_SPLIT, path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """`limit` problems of `split` (default: DEFAULT_SIZE), as {id, question, solution, answer}."""
    import reasoning_gym

    if path is not None:
        raise ValueError("gsm_symbolic is generated; it reads no file (use gsm8k=PATH for GSM8K files)")
    if split not in SPLIT_SEEDS:
        raise ValueError(f"gsm_symbolic: unknown split {split!r}; known: {', '.join(SPLIT_SEEDS)}")
    size = limit or DEFAULT_SIZE[split]
    return [
        {
            "id": f"gsm_symbolic-{split}-{i}",
            "question": x["question"],
            "solution": x["metadata"]["answer_cot"],
            "answer": gsm8k.extract_answer(x["metadata"]["answer_cot"], "strict"),
        }
        for i, x in enumerate(reasoning_gym.create_dataset("gsm_symbolic", size=size, seed=SPLIT_SEEDS[split]))
    ]


def shot_pool(path: str | Path | None = None) -> list[dict]:
    return load("train", path, SHOT_POOL_SIZE)


def mining_examples(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """The rows the data stages read (train: never the problems answered at test time)."""
    return load("train", path, limit)
