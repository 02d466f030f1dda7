"""Multiple choice, shared by ECQA, ARC-Challenge, ProofWriter, MMLU-Pro and HellaSwag.

Answer extraction fixes the reference (rationalyst.md 6.4, 7.10): "(B)", "B." and "B)" are accepted, not
only a bare first token; and when no letter can be found, or the text hedges or names several, the answer
is None (wrong), never a random letter: no answer is better than a wrong one.
"""

from __future__ import annotations

import re

LETTERS = "ABCDEFGHIJ"
END_PHRASES = ("the answer is", "the correct answer is")
# "(B)", "B", "**B**", "option B": the letter itself is case-sensitive ("the answer is a bank" names no choice)
_LEAD_IN = r"\**\s*(?:(?:option|choice|letter|ending)\s+)?\**"
_LETTER = r"\(?((?-i:[A-{last}]))\)?\**(?=$|[\s.,:;!)\]*])"
# after a stated letter: "or (B)", "and C", "/ B" make it a hedge, not an answer
_HEDGE = r"\s*(?:or|and|/|,)\s*(?:(?:option|choice)\s+)?\(?(?-i:[A-{last}])\b"
# a mention right after one of these is not chosen: "not (A)", "rather than B"
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever|\brather than|\binstead of|\bexcept)\s*(?:(?:option|choice)\s+)?$", re.I)


def _patterns(letters: str) -> dict[str, re.Pattern]:
    last = letters[-1]
    return {
        # "... the answer is (B)": the rule the prompts ask for
        "strict": re.compile(r"answer is\b[:\s]*" + _LEAD_IN + _LETTER.format(last=last), re.IGNORECASE),
        "hedge": re.compile(_HEDGE.format(last=last), re.IGNORECASE),
        # MMLU-Pro's "Answer: C": the letter must stand alone ("Answer: A person ..." is not a choice);
        # alone at the end of its line it may be lower case ("Answer: c")
        "colon": re.compile(
            r"\banswer\s*:\s*"
            + _LEAD_IN
            + rf"(?:\(((?-i:[A-{last}]))\)|((?-i:[A-{last}]))(?:[.)*]|[ \t]*(?:\n|$))|(?-i:([a-{last.lower()}]))[.)]?[ \t]*(?:\n|$))",
            re.IGNORECASE,
        ),
        # the last line is only a choice: "B", "(b)", "B.", "**B**", "Option B"
        "bare": re.compile(rf"^\W*(?:(?:option|choice|ending)\s+)?\(?([A-{last}])\)?[.)]?\W*$", re.IGNORECASE),
        # a choice named in prose: "(B)" or "B)" anywhere, "B." / "B:" opening a line or sentence, a bare
        # letter after "option", "choice", "ending" or "letter"
        "mention": re.compile(
            rf"(?<![A-Za-z\\])\(([A-{last}])\)"
            rf"|(?<![A-Za-z(])([A-{last}])\)"
            rf"|(?:^|(?<=[.!?]\s)|(?<=\n))[\s*]*([A-{last}])[.:](?=\s|$)"
            rf"|(?i:\b(?:option|choice|ending|letter)\s+)\**((?-i:[A-{last}]))(?=$|[\s.,:;!*])",
            re.MULTILINE,
        ),
    }


def _clean(text: str) -> str:
    return " ".join(re.sub(r"[*\"'`.,;:!]+", " ", text.lower()).split())


def _stated(matches: list[re.Match], text: str, hedge: re.Pattern) -> str | None:
    """The letter of the last match, or None when it is hedged ("the answer is (A) or (B)")."""
    last = matches[-1]
    letter = next(g for g in last.groups() if g)
    return None if hedge.match(text, last.end()) else letter.upper()


def extract_choice(
    text: str, letters: str = "ABCDE", mode: str = "flexible", options: list[str] | None = None
) -> str | None:
    """The chosen letter, or None: never a guess. In order (docs/answer-checking.md has the table):
    strict: the letter after "the answer is" (last such statement; a hedge "(A) or (B)" gives None).
    flexible: strict, else "Answer: X", else an option's exact text after "the answer is", else a last line
    that is only a letter ("B", "Option B"), else the one letter the text names as a choice ("(B)", "B) ...",
    "B. ..." opening a sentence, "option B"), negated mentions ("not (A)") left out; several letters: None."""
    pat = _patterns(letters)
    found = list(pat["strict"].finditer(text))
    if found:
        return _stated(found, text, pat["hedge"])
    if mode == "strict":
        return None
    found = list(pat["colon"].finditer(text))
    if found:
        return _stated(found, text, pat["hedge"])
    if options:
        said = re.findall(r"answer is[:\s]*([^\n]+)", text, re.IGNORECASE)
        if said:
            wanted = _clean(said[-1])
            hits = [letters[i] for i, o in enumerate(options[: len(letters)]) if _clean(o) and _clean(o) == wanted]
            if len(hits) == 1:
                return hits[0]
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and (m := pat["bare"].match(lines[-1].strip())):
        return m.group(1).upper()
    return _named(text, pat["mention"])


# a mention is taken as the choice when it opens or closes a line or sentence, follows one of these, or the
# text speaks of answers at all ("one apple (A) costs $1" names a variable, not a choice)
_CUE = re.compile(r"\b(?:option|choice|ending|letter|is|choose|pick|select|go with)$", re.IGNORECASE)
_ANSWER_TALK = re.compile(r"\b(?:answer|correct|choose|chose|pick|select|option|choice|ending)\b", re.IGNORECASE)


def _named(text: str, mention: re.Pattern) -> str | None:
    """The one letter the text names as a choice; None when it names none, or several (after leaving out
    negated mentions: "not (A)")."""
    named: dict[str, bool] = {}
    for m in mention.finditer(text):
        before = text[: m.start()]
        if _NEGATED.search(before[-40:]):
            continue
        paren, close, opening, cued = m.groups()
        tail = before.rstrip(" \t*")
        ends = re.match(r"[\s*]*(?:[.!]|$)", text[m.end() :])  # "..., (B)." closes its sentence
        strong = bool(opening or cued or not tail or tail[-1] in ".!?:\n" or _CUE.search(tail[-40:]) or ends)
        letter = paren or close or opening or cued
        named[letter] = named.get(letter, False) or strong
    if len(named) != 1:
        return None
    [(letter, strong)] = named.items()
    return letter if strong or _ANSWER_TALK.search(text) else None


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
