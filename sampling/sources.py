"""Where the RATIONALYST data stages get their documents (rationalyst.md sections 2 and 3.2).

A source is named `name` (Hub, or a generator) or `name=PATH` (a local file in the Hub rows'
format: JSONL, or a JSON list). Two views of each set:
  reference_text(name, row)  prefilter's reference documents: question + "\\n" + text (section 2)
  document_text(name, row)   extraction documents, "Question: ...\\nAnswer: ..." (section 3.2)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

from common.artifacts import read_jsonl

LETTERS = "ABCDEFGHIJ"

# name: (Hub id, config, split used for mining)
HUB = {
    "gsm8k": ("openai/gsm8k", "main", "train"),
    "ecqa": ("yangdong/ecqa", None, "train"),
    "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "train"),
    "proofwriter": ("tasksource/proofwriter", None, "train"),
    "math": ("lighteval/MATH", "all", "train"),
    "mmlu_pro": ("TIGER-Lab/MMLU-Pro", None, "validation"),
}
GENERATED = {"gsm_symbolic"}  # reasoning-gym's GSM8K-derived generator: offline, with worked solutions


def parse_source(spec: str) -> tuple[str, str | None]:
    name, _, path = spec.partition("=")
    name = name.strip()
    if name not in HUB and name not in GENERATED:
        raise ValueError(f"unknown source {name!r}; known: {', '.join(sorted([*HUB, *GENERATED]))} "
                         "(a local file in the same format: name=PATH)")
    return name, (path.strip() or None)


def load_rows(spec: str, limit: int = 0, seed: int = 0) -> list[dict]:
    name, path = parse_source(spec)
    if path:
        p = Path(path)
        if p.suffix == ".json":
            rows = json.loads(p.read_text())
        else:
            rows = list(read_jsonl(p))
        return rows[:limit] if limit else rows
    if name == "gsm_symbolic":
        import reasoning_gym
        ds = reasoning_gym.create_dataset("gsm_symbolic", size=limit or 1000, seed=seed)
        return [{"question": x["question"], "answer": x["metadata"]["answer_cot"]} for x in ds]
    from datasets import load_dataset
    hub_id, config, split = HUB[name]
    ds = load_dataset(hub_id, config, split=split)
    return list(ds.select(range(min(limit, len(ds))))) if limit else list(ds)


# ----------------------------------------------------------------------------- prefilter references (2)

def _ecqa_options(row: dict) -> list[str]:
    return [row[f"q_op{i}"] for i in range(1, 6)]  # all five: the reference dropped the fifth (7.8)


REFERENCE_TEXT: dict[str, Callable[[dict], str]] = {
    "gsm8k": lambda r: r["question"] + "\n" + r["answer"],
    "gsm_symbolic": lambda r: r["question"] + "\n" + r["answer"],
    "ecqa": lambda r: r["q_text"] + "\n" + "\n".join(_ecqa_options(r)),
    "arc_challenge": lambda r: r["question"] + "\n" + "\n".join(r["choices"]["text"]),
    "proofwriter": lambda r: r["question"] + "\n" + r["theory"],
    "math": lambda r: r["problem"] + "\n" + r["solution"],
    "mmlu_pro": lambda r: r["question"] + "\n" + "\n".join(r["options"]),
}


def reference_texts(specs: list[str], limit: int = 0, seed: int = 0) -> Iterator[str]:
    for spec in specs:
        name, _ = parse_source(spec)
        for row in load_rows(spec, limit, seed):
            yield REFERENCE_TEXT[name](row)


# ----------------------------------------------------------------------------- extraction docs (3.2)

def _ecqa_document(r: dict) -> str:
    options = _ecqa_options(r)
    gold = options.index(r["q_ans"]) if r["q_ans"] in options else None
    choices = " ".join(f"{LETTERS[i]} - {o}" for i, o in enumerate(options))
    # the explanation: negatives with the joined positives spliced in at the gold option's place
    negatives = [s.strip() for s in (r.get("taskA_neg") or "").split("\n") if s.strip()]
    positives = " ".join(s.strip() for s in (r.get("taskA_pos") or "").split("\n") if s.strip())
    parts = negatives[:]
    parts.insert(gold if gold is not None else len(parts), positives)
    explanation = " ".join(p for p in parts if p) or (r.get("taskB") or "")
    answer = f" The answer is {LETTERS[gold]}" if gold is not None else ""
    return f"Question: {r['q_text']}\nChoices: {choices}\nAnswer: {explanation}{answer}"


def _mmlu_pro_document(r: dict) -> str:
    choices = " ".join(f"{LETTERS[i]} - {o}" for i, o in enumerate(r["options"]))
    return f"Question: {r['question']}\nChoices: {choices}\n{r.get('cot_content') or ''}".rstrip()


DOCUMENT_TEXT: dict[str, Callable[[dict], str]] = {
    "gsm8k": lambda r: f"Question: {r['question']}\nAnswer: {r['answer']}",
    "gsm_symbolic": lambda r: f"Question: {r['question']}\nAnswer: {r['answer']}",
    "ecqa": _ecqa_document,
    "math": lambda r: f"Question: {r['problem']}\nAnswer: {r['solution']}",
    "mmlu_pro": _mmlu_pro_document,
    "arc_challenge": lambda r: ("Question: " + r["question"] + "\nChoices: "
                                + " ".join(f"{l} - {t}" for l, t in zip(r["choices"]["label"], r["choices"]["text"]))
                                + f"\nAnswer: The answer is {r['answerKey']}"),
    "proofwriter": lambda r: f"Question: {r['theory']}\n{r['question']}\nAnswer: {r['answer']}",
}


def documents(specs: list[str], limit: int = 0, seed: int = 0) -> Iterator[dict]:
    """Extraction input records {"id", "source", "text"} for the reasoning data sets."""
    for spec in specs:
        name, _ = parse_source(spec)
        for i, row in enumerate(load_rows(spec, limit, seed)):
            yield {"id": f"{name}-{i}", "source": name, "text": DOCUMENT_TEXT[name](row)}
