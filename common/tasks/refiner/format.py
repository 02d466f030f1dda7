"""REFINER's text layouts, shared by critic data, training and prediction (refiner.md 2.6, 4), and the one
normalisation of decoded text that all three tasks read generated text through (`canonical`).

  critic input       "{x} Previous Answer: {hypothesis}"                      -> feedback
  refinement input   "{x} Previous Answer: {hypothesis} <hint> {feedback} | EOH" -> gold z
Feedback does not accumulate: each turn sees x, the latest answer and its feedback (as the reference).
"""

import re

NO_HINT = "No hint."
# Moral Stories' norm / moral action separator in z. REFINER wrote `<|M_ACT|>` (refiner.md 1.3), which no
# tokenizer the recipes use gives back: T5's SentencePiece has no `<` (it decodes to nothing with
# skip_special_tokens), MiniLM's uncased WordPiece decodes it as `< | m _ act | >`. Plain words survive both.
M_ACT = "Moral action:"
_M_ACT_FORMS = re.compile(
    r" ?(?:<? ?\| ?m ?_ ?act ?\| ?>?|\bmoral action ?:) ?",  # the old marker, whole or as decoded, or the words
    re.IGNORECASE,
)
_STEP_LABEL = re.compile(r"# (\d)")  # `# 0 :` -> `#0 :`
_BEFORE_PUNCT = re.compile(r" ([.,!?:;])")  # `danger .` -> `danger.`; `#0 :` -> `#0:`
_APOSTROPHE = re.compile(r"(\w) ?' ?(\w)")  # `they ' re` -> `they're`
_REPEATED_BANG = re.compile(r"! (?=!)")  # `invalid ! !` -> `invalid!!`


def canonical(text: str) -> str:
    """Decoded model text in the layout the task parsers read: whitespace collapsed, the spaces a WordPiece
    decode puts into step labels, punctuation and contractions removed, every spelling of the Moral Stories
    separator written as M_ACT. Linear time on any input; idempotent. Case is kept (T5 keeps it; the
    parsers compare case-insensitively, since MiniLM's tokenizer lower-cases)."""
    text = " ".join(text.split())
    text = _STEP_LABEL.sub(r"#\1", text)
    text = _BEFORE_PUNCT.sub(r"\1", text)
    text = _REPEATED_BANG.sub("!", text)
    text = _APOSTROPHE.sub(r"\1'\2", text)
    return _M_ACT_FORMS.sub(f" {M_ACT} ", text).strip()


def critic_input(x: str, hypothesis: str) -> str:
    return f"{x} Previous Answer: {hypothesis}"


def refine_input(x: str, hypothesis: str, feedback: str) -> str:
    return f"{x} Previous Answer: {hypothesis} <hint> {feedback} | EOH"


def is_no_hint(feedback: str) -> bool:
    return canonical(feedback).rstrip(".").lower() in ("no hint", "no")


def feedback_sentences(feedback: str) -> tuple[str, ...]:
    """Feedback as its sorted, lower-cased sentences: the paper scores the critic "sentence-level,
    order-insensitive" (refiner.md 2.6). Every "No hint" spelling is one sentence, `no hint`."""
    if is_no_hint(feedback):
        return ("no hint",)
    parts = re.split(r"(?<=[.!?]) ", canonical(feedback).lower())
    return tuple(sorted(p.rstrip(".!? ") for p in parts if p.rstrip(".!? ")))


def critic_scores(targets: list[str], predictions: list[str], kinds: list[str] | None = None) -> dict:
    """The critic's own accuracy on held-out critic records, in percent (refiner.md 2.6): feedback exact
    match (sentence-level, order-insensitive), and the precision and recall of its "No hint." (the stop
    signal of prediction: a false one ends refinement on a wrong answer); exact match per record kind."""
    if len(targets) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} critic records")
    match = [feedback_sentences(t) == feedback_sentences(p) for t, p in zip(targets, predictions)]
    gold_stop = [is_no_hint(t) for t in targets]
    said_stop = [is_no_hint(p) for p in predictions]
    both = sum(g and s for g, s in zip(gold_stop, said_stop))

    def pct(num: int, den: int) -> float:
        return round(100.0 * num / den, 2) if den else float("nan")

    scores = {
        "n": len(targets),
        "feedback_exact_match": pct(sum(match), len(targets)),
        "no_hint_precision": pct(both, sum(said_stop)),
        "no_hint_recall": pct(both, sum(gold_stop)),
        "no_hint_n": sum(gold_stop),
    }
    if kinds is not None:
        for kind in sorted(set(kinds)):
            hits = [m for m, k in zip(match, kinds) if k == kind]
            scores[f"exact_match_{kind}"] = pct(sum(hits), len(hits))
    return scores
