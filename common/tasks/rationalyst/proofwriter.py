"""ProofWriter (Tafjord et al. 2021): is a statement true, false or unknown given facts and rules
(open-world; rationalyst.md 6.2).

The reference read an unreleased local `proofwriter_test.json`: a JSON list of {"question", "context",
"answer"} with the answer as a letter (A True, B False, C Unknown). `proofwriter=PATH` reads that layout
(JSON list or JSONL; Logic-LM's files, whose question starts "Based on the above information, ...", work
too), and also rows in the Hub layout. From the Hub: `tasksource/proofwriter` ({"theory", "question",
"answer": True/False/Unknown, "config", ...}), test split, keeping config `depth-5` (the deepest
open-world set, the one Logic-LM's 600-question test file was drawn from). Few-shot: 3 hand-written
chaining items (this project's own): true, false, unknown.
"""

from __future__ import annotations

import re
from pathlib import Path

from common.tasks import choice, data

# the multiple-choice parts of the task interface (common/tasks/rationalyst/__init__.py)
is_correct, states_answer, shot_steps = choice.is_correct, choice.states_answer, choice.steps_of
HUB, HUB_KEEP_CONFIG = ("tasksource/proofwriter", None), "depth-5"
DEFAULT_SPLIT, DEFAULT_SHOTS = "test", 3
LETTERS, WORDS = "ABC", ("true", "false", "unknown")
SYSTEM = (
    "Decide from the context whether the statement is true, false or unknown: A) True, B) False, C) Unknown. "
    "Reason one sentence per step, writing only the next sentence each time, and finish with "
    '"The answer is: <letter>".'
)
_LEAD = re.compile(r"^\s*based on the (?:above|context) information,.*?\?\s*", re.IGNORECASE)


def _shot(context: str, statement: str, steps: list[str], answer: str) -> dict:
    return {
        "id": f"proofwriter-shot-{answer}",
        "question": statement,
        "context": context,
        "answer": answer,
        "steps": steps + [f"The answer is: {answer}"],
    }


SHOTS = [
    _shot(
        "The squirrel is small. The squirrel is brown. The owl is big. If something is small then it is quick. "
        "If something is quick and brown then it climbs trees. If something is big then it is not quick.",
        "The squirrel climbs trees.",
        [
            "The squirrel is small, and small things are quick, so the squirrel is quick.",
            "The squirrel is quick and brown, and quick brown things climb trees, so the squirrel climbs trees.",
            "The statement follows from the context, so it is true.",
        ],
        "A",
    ),
    _shot(
        "Dave is wet. Dave is cold. Erin is happy. If someone is wet then they are not happy. "
        "If someone is cold and not happy then they shiver.",
        "Dave is happy.",
        [
            "Dave is wet, and wet people are not happy, so Dave is not happy.",
            "The statement says Dave is happy, which contradicts what we derived.",
            "So the statement is false.",
        ],
        "B",
    ),
    _shot(
        "The cat sees the dog. The dog is red. If something sees the dog then it is alert. "
        "If something is alert and round then it chases the mouse. If the dog is red then the dog is loud.",
        "The cat chases the mouse.",
        [
            "The cat sees the dog, so the cat is alert.",
            "To chase the mouse the cat would also have to be round, and the context says nothing about that.",
            "Neither the statement nor its negation follows, so it is unknown.",
        ],
        "C",
    ),
]


def _gold(value, where: str) -> str:
    text = str(value).strip()
    if text.upper() in LETTERS and len(text) == 1:
        return text.upper()
    if text.lower() in WORDS:
        return LETTERS[WORDS.index(text.lower())]
    raise ValueError(f"{where}: answer {value!r} is not A/B/C or True/False/Unknown")


def example(row: dict, ident: str, where: str) -> dict:
    context = row.get("context", row.get("theory"))
    if context is None or "question" not in row or "answer" not in row:
        raise ValueError(f"{where}: a ProofWriter row needs question, context (or theory) and answer")
    return {
        "id": ident,
        "question": _LEAD.sub("", row["question"]).strip(),
        "context": context,
        "answer": _gold(row["answer"], where),
        "source_id": row.get("id"),
    }


def load(split: str = DEFAULT_SPLIT, path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    rows = data.rows(split, path, HUB)
    if not path:
        kept = [r for r in rows if r.get("config") == HUB_KEEP_CONFIG]
        if not kept:
            raise ValueError(
                f"{HUB[0]} {split}: no rows with config {HUB_KEEP_CONFIG!r} "
                f"(found {sorted({str(r.get('config')) for r in rows})[:10]})"
            )
        rows = kept
    out = [example(r, f"proofwriter-{split}-{i}", f"{path or HUB[0]} {split} record {i}") for i, r in enumerate(rows)]
    return out[:limit] if limit else out


# "the answer is False" / "Answer: True" name a choice by its word (both modes read "answer is")
_WORD = r"(true|false|unknown)\b"
_ANSWER_WORD = {
    "strict": re.compile(r"(answer is[:\s]*\**\s*)" + _WORD, re.IGNORECASE),
    "flexible": re.compile(r"(answer is[:\s]*\**\s*|\banswer\s*:\s*\**\s*)" + _WORD, re.IGNORECASE),
}
# flexible, when nothing else names a choice: "So the statement is true." (a hedge "true or unknown" is none)
_STATEMENT = re.compile(
    r"\bstatement is\s*\**\s*" + _WORD + r"(?!\s*(?:or|and|/)\s*(?:true|false|unknown))", re.IGNORECASE
)


def predict(text: str, example: dict | None = None, mode: str = "flexible") -> str | None:
    """The letter after "the answer is", the word mapped to its letter ("the answer is False" counts as B, in
    both modes); flexible: also "Answer: True", the choice forms of common.tasks.choice, and at last "the
    statement is true"."""
    lettered = _ANSWER_WORD[mode].sub(lambda m: m.group(1) + LETTERS[WORDS.index(m.group(2).lower())], text)
    found = choice.extract_choice(lettered, LETTERS, mode, ["True", "False", "Unknown"])
    if found is None and mode == "flexible" and not re.search(r"answer is", text, re.IGNORECASE):
        stated = _STATEMENT.findall(text)
        found = LETTERS[WORDS.index(stated[-1].lower())] if stated else None
    return found


def shot_pool(path: str | Path | None = None) -> list[dict]:
    return SHOTS


def prefix(example: dict) -> str:
    """6.2's layout (the reference ended it with "Answer: ", a trailing space; dropped here)."""
    return (
        "Question: Based on the context information, is the following statement true, false, or unknown? "
        f"{example['question']}\nContext: {example['context']}\nChoices: A) True B) False C) Unknown\nAnswer:"
    )


# ----------------------------------------------------------------------------- data stages (rationalyst.md 2, 3.2)


def mining_examples(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """The rows the data stages read: prefilter references and extraction documents (train)."""
    return load("train", path, limit)


def reference_text(example: dict) -> str:
    """Question + theory (rationalyst.md 2)."""
    return example["question"] + "\n" + example["context"]


def document_text(example: dict) -> str:
    """3.2 (built by the reference, not mined by it): theory, statement, answer word."""
    word = WORDS[LETTERS.index(example["answer"])].capitalize()
    return f"Question: {example['context']}\n{example['question']}\nAnswer: {word}"
