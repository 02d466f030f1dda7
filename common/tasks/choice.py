"""Multiple choice, shared by ECQA, ARC-Challenge, ProofWriter, MMLU-Pro and HellaSwag.

Answer extraction fixes the reference (rationalyst.md 6.4, 7.10): "(B)", "B." and "B)" are accepted, not
only a bare first token; and when no letter can be found the answer is None (wrong), never a random letter.
"""

from __future__ import annotations

import re

LETTERS = "ABCDEFGHIJ"
END_PHRASES = ("the answer is", "the correct answer is")
# the letter itself is case-sensitive: "the answer is a bank" names no choice
_LETTER = r"\(?((?-i:[A-{last}]))\)?(?=$|[\s.,:;!)\]*])"


def _patterns(letters: str) -> tuple[re.Pattern, re.Pattern, re.Pattern]:
    letter = _LETTER.format(last=letters[-1])
    strict = re.compile(r"answer is[:\s]*\**\s*" + letter, re.IGNORECASE)
    # MMLU-Pro's "Answer: C": the letter must stand alone ("Answer: A person ..." is not a choice)
    colon = re.compile(
        r"\banswer\s*:\s*\**\s*(?:\(((?-i:[A-{last}]))\)|((?-i:[A-{last}]))(?:[.)*]|[ \t]*(?:\n|$)))".format(
            last=letters[-1]
        ),
        re.IGNORECASE,
    )
    loose = re.compile(r"(?<![A-Za-z])\(([A-{last}])\)|(?<![A-Za-z'])([A-{last}])[.)](?=\s|$)".format(last=letters[-1]))
    return strict, colon, loose


def _clean(text: str) -> str:
    return " ".join(re.sub(r"[*\"'`.,;:!]+", " ", text.lower()).split())


def extract_choice(
    text: str, letters: str = "ABCDE", mode: str = "flexible", options: list[str] | None = None
) -> str | None:
    """strict: the letter after "the answer is" (last such mention). flexible: strict, else "Answer: X",
    else an option's exact text after "the answer is", else the last "(X)" / "X." / "X)". None when
    nothing matches."""
    strict, colon, loose = _patterns(letters)
    found = strict.findall(text)
    if found:
        return found[-1].upper()
    if mode == "strict":
        return None
    found = [a or b for a, b in colon.findall(text)]
    if found:
        return found[-1].upper()
    if options:
        said = re.findall(r"answer is[:\s]*([^\n]+)", text, re.IGNORECASE)
        if said:
            wanted = _clean(said[-1])
            hits = [letters[i] for i, o in enumerate(options[: len(letters)]) if _clean(o) and _clean(o) == wanted]
            if len(hits) == 1:
                return hits[0]
    found = [a or b for a, b in loose.findall(text)]
    return found[-1] if found else None


def letter_index(label: str, labels: list[str]) -> int:
    """Position of a gold label among the row's labels (ARC mixes "A".."E" and "1".."5")."""
    try:
        return labels.index(str(label).strip())
    except ValueError:
        raise ValueError(f"gold label {label!r} is not among the choices {labels}") from None


def format_choices(options: list[str]) -> str:
    """6.2: "A - t1 B - t2 ..." on one line."""
    return " ".join(f"{LETTERS[i]} - {o}" for i, o in enumerate(options))


def prefix(question: str, options: list[str]) -> str:
    """6.2 (ECQA, ARC): "Question: {q}\\nChoices: A - t1 B - t2 ...\\nAnswer:"."""
    return f"Question: {question}\nChoices: {format_choices(options)}\nAnswer:"


def predict(text: str, example: dict, mode: str = "flexible") -> str | None:
    options = example["choices"]
    return extract_choice(text, LETTERS[: len(options)], mode, options)


def is_correct(prediction: str | None, gold: str) -> bool:
    return prediction is not None and prediction == gold


def states_answer(step: str) -> bool:
    low = step.lower()
    return any(p in low for p in END_PHRASES)


def steps_of(example: dict) -> list[str]:
    """The assistant turns of a few-shot example (hand-written or built by the task)."""
    return example["steps"]


def read_row(row: dict, where: str) -> tuple[str, list[str], str]:
    """(question, option texts, gold letter) of an ARC / CommonsenseQA row, in the Hub's layout
    ({"question", "choices": {"label", "text"}, "answerKey"}) or the original releases' layout
    ({"question": {"stem", "choices": [{"label", "text"}]}, "answerKey"})."""
    try:
        q = row["question"]
        if isinstance(q, dict):
            question, labels, texts = q["stem"], [c["label"] for c in q["choices"]], [c["text"] for c in q["choices"]]
        else:
            question, labels, texts = q, list(row["choices"]["label"]), list(row["choices"]["text"])
        gold = LETTERS[letter_index(row["answerKey"], labels)]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: not a multiple-choice row ({exc.__class__.__name__}: {exc})") from None
    return question, texts, gold
