"""REFINER's text layouts, shared by critic data, training and prediction (refiner.md 2.6, 4).

  critic input       "{x} Previous Answer: {hypothesis}"                      -> feedback
  refinement input   "{x} Previous Answer: {hypothesis} <hint> {feedback} | EOH" -> gold z
Feedback does not accumulate: each turn sees x, the latest answer and its feedback (as the reference).
"""

NO_HINT = "No hint."


def critic_input(x: str, hypothesis: str) -> str:
    return f"{x} Previous Answer: {hypothesis}"


def refine_input(x: str, hypothesis: str, feedback: str) -> str:
    return f"{x} Previous Answer: {hypothesis} <hint> {feedback} | EOH"


def is_no_hint(feedback: str) -> bool:
    return feedback.strip().rstrip(".").lower() in ("no hint", "no")
