"""ECQA (Aggarwal et al. 2021): CommonsenseQA with human explanations (rationalyst.md 6.2).

Questions: CommonsenseQA validation (`tau/commonsense_qa`, 1,221; rows {"id", "question", "choices":
{"label", "text"}, "answerKey"}), as the reference. Few-shot: 8 ECQA train items (`yangdong/ecqa`; rows
{"q_no", "q_text", "q_op1".."q_op5", "q_ans" (the answer's text), "taskA_pos", "taskA_neg" (explanation
sentences, one per line), "taskB"}) whose steps are the explanation: the negative sentences with the joined
positive ones spliced in at the gold option's place, then "The answer is: X". The reference joined
CommonsenseQA to an unreleased local file for this; ECQA's Hub rows carry the same explanations.

Locally, `ecqa=PATH`: a folder with `validation.jsonl` (questions) and `train.jsonl` (shots), or one file;
each row may be in either layout (CommonsenseQA's original `{"question": {"stem", "choices": [...]}}` too).
"""

from __future__ import annotations

from pathlib import Path

from common.tasks import choice, data
from common.tasks.choice import LETTERS

# the multiple-choice parts of the task interface (common/tasks/rationalyst/__init__.py)
is_correct, predict, states_answer, shot_steps = (
    choice.is_correct,
    choice.predict,
    choice.states_answer,
    choice.steps_of,
)
QUESTIONS_HUB, SHOTS_HUB = ("tau/commonsense_qa", None), ("yangdong/ecqa", None)
DEFAULT_SPLIT, DEFAULT_SHOTS = "validation", 8
SYSTEM = (
    "Answer the multiple-choice commonsense question. Reason step by step, writing only the next single "
    'sentence each time, and finish with "The answer is: <letter>".'
)


def _lines(text) -> list[str]:
    if isinstance(text, list):
        return [s.strip() for s in text if s and s.strip()]
    return [s.strip() for s in (text or "").split("\n") if s.strip()]


def example(row: dict, ident: str, where: str) -> dict:
    if "q_text" in row:  # ECQA
        options = [row[f"q_op{i}"] for i in range(1, 6)]
        if row.get("q_ans") not in options:
            raise ValueError(f"{where}: q_ans {row.get('q_ans')!r} is not one of the options")
        gold = options.index(row["q_ans"])
        negatives, positives = _lines(row.get("taskA_neg")), _lines(row.get("taskA_pos"))
        question, answer = row["q_text"], LETTERS[gold]
    else:  # CommonsenseQA, optionally with ECQA's positives/negatives lists joined in
        question, options, answer = choice.read_row(row, where)
        gold, negatives, positives = LETTERS.index(answer), _lines(row.get("negatives")), _lines(row.get("positives"))
    # 6.2, 3.2: the negatives with the joined positives spliced in at the gold index
    explanation = [s for s in negatives[:gold] + [" ".join(positives)] + negatives[gold:] if s]
    steps = explanation + [f"The answer is: {answer}"] if positives else None
    return {
        "id": ident,
        "question": question,
        "choices": options,
        "answer": answer,
        "steps": steps,
        "explanation": explanation,
        "free_explanation": row.get("taskB") or "",
        "source_id": row.get("id") or row.get("q_no"),
    }


def load(split: str = DEFAULT_SPLIT, path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """Questions from CommonsenseQA; the train split (shots, mining) from ECQA, which has the explanations."""
    hub = SHOTS_HUB if split == "train" else QUESTIONS_HUB
    rows = data.rows(split, path, hub)
    out = [example(r, f"ecqa-{split}-{i}", f"{path or hub[0]} {split} record {i}") for i, r in enumerate(rows)]
    return out[:limit] if limit else out


def shot_pool(path: str | Path | None = None) -> list[dict]:
    pool = [ex for ex in load("train", path) if ex["steps"]]
    if not pool:
        raise ValueError(
            f"{path or SHOTS_HUB[0]}: no train rows with explanations (ECQA's taskA_pos/taskA_neg) "
            "for the few-shot turns"
        )
    return pool


def prefix(example: dict) -> str:
    return choice.prefix(example["question"], example["choices"])


# ----------------------------------------------------------------------------- data stages (rationalyst.md 2, 3.2)


def mining_examples(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """The rows the data stages read: prefilter references and extraction documents (train)."""
    return load("train", path, limit)


def reference_text(example: dict) -> str:
    """Question + its five options, one per line (the reference dropped the fifth: 7.8)."""
    return example["question"] + "\n" + "\n".join(example["choices"])


def document_text(example: dict) -> str:
    """3.2: "Question: ..\nChoices: A - .. E - ..\nAnswer: " + the explanation + " The answer is X"."""
    explanation = " ".join(example["explanation"]) or example["free_explanation"]
    return (
        f"Question: {example['question']}\nChoices: {choice.format_choices(example['choices'])}\n"
        f"Answer: {explanation} The answer is {example['answer']}"
    )
