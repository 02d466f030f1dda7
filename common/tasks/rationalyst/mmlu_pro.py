"""MMLU-Pro (Wang et al. 2024): 14 subject categories, up to 10 options (rationalyst.md 6.2).

Rows (`TIGER-Lab/MMLU-Pro`, test 12,032 / validation 70; locally the Hub snapshot's parquet files or
JSONL/JSON of the same rows): {"question_id", "question", "options", "answer" (letter), "answer_index",
"cot_content", "category", "src"}. Few-shot: 5 validation items of the question's own category, whose
steps are `cot_content` without its leading "A: ", split on ". ". The system prompt names the category
and asks for "The answer is (X)". Extraction never falls back to a random letter (the reference did, 7.10).
"""

from __future__ import annotations

import re
from pathlib import Path

from common.tasks import choice, data
from common.tasks.choice import LETTERS

# the multiple-choice parts of the task interface (common/tasks/rationalyst/__init__.py)
is_correct, predict, states_answer = choice.is_correct, choice.predict, choice.states_answer
HUB = ("TIGER-Lab/MMLU-Pro", None)
DEFAULT_SPLIT, DEFAULT_SHOTS = "test", 5
SYSTEM = (
    "Answer the multiple-choice question about {category}. Reason step by step, writing only the next "
    'single sentence each time, and finish with "The answer is (X)" where X is the letter of your choice.'
)


def example(row: dict, ident: str, where: str) -> dict:
    options = list(row["options"])
    while options and (options[-1] is None or str(options[-1]).strip() == "N/A"):  # padding, if any
        options.pop()
    answer = str(row["answer"]).strip().upper()
    if answer not in LETTERS[: len(options)]:
        raise ValueError(f"{where}: answer {row['answer']!r} is not one of the {len(options)} options")
    return {
        "id": ident,
        "question": row["question"],
        "choices": options,
        "answer": answer,
        "category": row["category"],
        "cot": row.get("cot_content") or "",
        "source_id": row.get("question_id"),
    }


def load(split: str = DEFAULT_SPLIT, path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    rows = data.rows(split, path, HUB, ("question", "options", "answer", "category"))
    out = [example(r, f"mmlu_pro-{split}-{i}", f"{path or HUB[0]} {split} record {i}") for i, r in enumerate(rows)]
    return out[:limit] if limit else out


def shot_pool(path: str | Path | None = None) -> list[dict]:
    return [ex for ex in load("validation", path) if ex["cot"].strip()]


def shot_key(example: dict) -> str:
    return example["category"]


def system_prompt(example: dict) -> str:
    return SYSTEM.format(category=example["category"])


def prefix(example: dict) -> str:
    return choice.prefix(example["question"], example["choices"])


def shot_steps(example: dict) -> list[str]:
    """6.2: cot_content minus its leading "A: ", split on ". " (each step keeps its period)."""
    cot = re.sub(r"^\s*A:\s*", "", example["cot"]).strip()
    pieces = [p.strip() for p in cot.split(". ")]
    return [p if i == len(pieces) - 1 or p.endswith(".") else p + "." for i, p in enumerate(pieces) if p]


# ----------------------------------------------------------------------------- data stages (rationalyst.md 2, 3.2)


def mining_examples(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """The rows the data stages read: prefilter references and extraction documents (validation)."""
    return load("validation", path, limit)


def reference_text(example: dict) -> str:
    return example["question"] + "\n" + "\n".join(example["choices"])


def document_text(example: dict) -> str:
    """3.2: "Question: ..\nChoices: A - .. \n" + cot_content (the validation split's 70 worked items)."""
    return f"Question: {example['question']}\nChoices: {choice.format_choices(example['choices'])}\n{example['cot']}".rstrip()
