"""GSM8K (Cobbe et al. 2021): grade-school math word problems with worked solutions.

Original format, one JSON object per line: {"question": ..., "answer": "<steps with <<a*b=c>>
calculator notes>\n#### 72"}. Loaded from the Hub (`openai/gsm8k`, config `main`) or from a
local file or folder in that format (e.g. ../shared/data/gsm8k/{train,test}.jsonl).
"""

from __future__ import annotations

import re
from pathlib import Path

from common.artifacts import read_jsonl
from common.tasks.answers import NUMBER, last_number, normalize_number

HUB_ID, HUB_CONFIG = "openai/gsm8k", "main"
CALCULATOR_RE = re.compile(r"<<[^<>]*>>")
STRICT_RES = [
    re.compile(r"####\s*(" + NUMBER + ")"),
    re.compile(r"[Tt]he (?:final )?answer is[:\s]*\**\s*(" + NUMBER + ")"),
]


def load(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """Examples as {id, question, solution, answer}; `answer` is the normalised gold number."""
    if path is not None:
        path = Path(path)
        if path.is_dir():
            path = path / f"{split}.jsonl"
        rows = list(read_jsonl(path, "error", required=("question", "answer")))
    else:
        from datasets import load_dataset

        rows = list(load_dataset(HUB_ID, HUB_CONFIG, split=split))
    return [
        example(row, f"gsm8k-{split}-{i}", f"{path or HUB_ID} {split} record {i}")
        for i, row in enumerate(rows[:limit] if limit else rows)
    ]


def example(row: dict, ident: str, where: str) -> dict:
    gold = extract_answer(row["answer"], "strict")
    if gold is None:
        raise ValueError(f"{where}: no '#### N' in the answer")
    return {"id": ident, "question": row["question"], "solution": row["answer"], "answer": gold}


def strip_calculator(solution: str) -> str:
    """Remove <<48/2=24>> calculator annotations (they are not part of the written reasoning)."""
    return CALCULATOR_RE.sub("", solution)


def extract_answer(text: str, mode: str = "flexible") -> str | None:
    """strict: '#### N' or 'The answer is N' (last such mention); flexible: strict, else the last number."""
    for pattern in STRICT_RES:
        found = pattern.findall(text)
        if found:
            return normalize_number(found[-1])
    if mode == "strict":
        return None
    return last_number(text)


def is_correct(prediction: str | None, gold: str) -> bool:
    return prediction is not None and normalize_number(prediction) == normalize_number(gold)


# ----------------------------------------------------------------------------- inference interface (6.2)

DEFAULT_SPLIT, DEFAULT_SHOTS = "test", 9


def shot_pool(path: str | Path | None = None) -> list[dict]:
    return load("train", path)


def prefix(example: dict) -> str:
    return f"Question: {example['question']}\nAnswer:"


def shot_steps(example: dict) -> list[str]:
    """6.2: one turn per solution line, '.' appended if missing, '####' -> 'The answer is:'."""
    lines = strip_calculator(example["solution"]).replace("####", "The answer is:").split("\n")
    return [line if line.endswith(".") else line + "." for line in (x.strip() for x in lines) if line]


def predict(text: str, example: dict, mode: str = "flexible") -> str | None:
    return extract_answer(text, mode)


def states_answer(step: str) -> bool:
    low = step.lower()
    return "the answer is" in low or "the correct answer is" in low


# ----------------------------------------------------------------------------- data stages (rationalyst.md 2, 3.2)


def mining_examples(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """The rows the data stages read: prefilter references and extraction documents (train)."""
    return load("train", path, limit)


def reference_text(example: dict) -> str:
    """A prefilter reference document: question + "\n" + solution (calculator notes kept, as the reference)."""
    return example["question"] + "\n" + example["solution"]


def document_text(example: dict) -> str:
    """An extraction document (3.2): "Question: {q}\nAnswer: {solution}", `#### N` included."""
    return f"Question: {example['question']}\nAnswer: {example['solution']}"
