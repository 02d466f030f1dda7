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
