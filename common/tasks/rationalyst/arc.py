"""ARC-Challenge (Clark et al. 2018): grade-school science, 3-5 options (rationalyst.md 6.2).

Rows: the Hub's `allenai/ai2_arc` (config `ARC-Challenge`; {"id", "question", "choices": {"text", "label"},
"answerKey"}), or the original release's `ARC-Challenge-{Train,Dev,Test}.jsonl` ({"id", "question":
{"stem", "choices": [{"text", "label"}]}, "answerKey"}); point `arc=PATH` at that folder or a file. Some
rows label their options 1-4: the gold is mapped to a letter by position. Test: 1,172 questions.
Few-shot: 8 hand-written items (this project's own), one step per option, then "The answer is: X".
"""

from __future__ import annotations

from pathlib import Path

from common.tasks import choice, data

# the multiple-choice parts of the task interface (common/tasks/rationalyst/__init__.py)
is_correct, predict, states_answer, shot_steps = (
    choice.is_correct,
    choice.predict,
    choice.states_answer,
    choice.steps_of,
)
HUB = ("allenai/ai2_arc", "ARC-Challenge")
DEFAULT_SPLIT, DEFAULT_SHOTS = "test", 8
SYSTEM = (
    "Answer the multiple-choice science question. Look at every choice in turn, one sentence per step and "
    'only the next sentence each time, then finish with "The answer is: <letter>".'
)


def _shot(question: str, options: list[str], notes: list[str], answer: str) -> dict:
    return {
        "id": f"arc-shot-{question[:24]}",
        "question": question,
        "choices": options,
        "answer": answer,
        "steps": [f"({l}) {n}" for l, n in zip("ABCDE", notes)] + [f"The answer is: {answer}"],
    }


SHOTS = [
    _shot(
        "A boy gives a toy car the same push on a carpet and on a smooth wooden floor. Why does it roll farther "
        "on the wooden floor?",
        [
            "The wooden floor causes less friction.",
            "The car is lighter on wood.",
            "Gravity is weaker over wood.",
            "The carpet pushes the car forward.",
        ],
        [
            "Less friction means less force slowing the car, so it rolls farther; this explains it.",
            "The car's weight does not change with the surface under it.",
            "Gravity is the same over both floors in one room.",
            "A carpet slows a rolling car rather than pushing it.",
        ],
        "A",
    ),
    _shot(
        "Which of these energy resources is renewable?",
        ["coal", "natural gas", "wind", "oil"],
        [
            "Coal formed over millions of years and is used up far faster than it forms.",
            "Natural gas is a fossil fuel, so it is not replaced on a human time scale.",
            "Wind keeps being produced by the Sun heating the air, so it is renewable.",
            "Oil is a fossil fuel like coal and gas.",
        ],
        "C",
    ),
    _shot(
        "A green plant is left in a dark cupboard for two weeks. What will most likely happen to it?",
        [
            "It will grow darker green leaves.",
            "It will turn pale and weak because it cannot make enough food.",
            "It will grow more flowers.",
            "It will photosynthesize faster.",
        ],
        [
            "Without light the plant makes less chlorophyll, so its leaves get lighter, not darker.",
            "Plants need light to make food by photosynthesis, so in the dark it weakens and turns pale.",
            "Flowering takes energy the plant cannot make in the dark.",
            "Photosynthesis needs light, so it slows down in the dark.",
        ],
        "B",
    ),
    _shot(
        "Which property of a mineral is tested by trying to scratch a glass plate with it?",
        ["luster", "color", "magnetism", "hardness"],
        [
            "Luster is how the surface reflects light, which needs no scratching.",
            "Color is seen by looking at the mineral.",
            "Magnetism is tested with a magnet.",
            "A mineral that scratches glass is harder than glass, so the test is about hardness.",
        ],
        "D",
    ),
    _shot(
        "Drops of water form on the outside of a glass of ice water on a warm day. What is this process called?",
        ["condensation", "evaporation", "melting", "freezing"],
        [
            "Water vapor in the air cools on the cold glass and turns into liquid drops: that is condensation.",
            "Evaporation turns liquid into vapor, the opposite of what happens here.",
            "Melting turns a solid into a liquid, but the drops come from the air, not from ice.",
            "Freezing would make ice, not liquid drops.",
        ],
        "A",
    ),
    _shot(
        "Which body system carries oxygen from the lungs to the rest of the body?",
        ["the digestive system", "the nervous system", "the skeletal system", "the circulatory system"],
        [
            "The digestive system breaks down food.",
            "The nervous system carries signals, not oxygen.",
            "The skeletal system supports and protects the body.",
            "The heart and blood vessels move oxygen-rich blood around the body.",
        ],
        "D",
    ),
    _shot(
        "Why does the Moon seem to change shape over a month?",
        [
            "Earth's shadow covers part of it each night.",
            "The Moon gives off less light on some nights.",
            "As it orbits Earth we see different amounts of its sunlit half.",
            "Clouds hide parts of it.",
        ],
        [
            "Earth's shadow falls on the Moon only during an eclipse, not every night.",
            "The Moon makes no light of its own; it reflects sunlight.",
            "Half of the Moon is always lit, and its position in its orbit sets how much of that half faces us.",
            "Clouds come and go and do not follow a monthly pattern.",
        ],
        "C",
    ),
    _shot(
        "Which tool is best for measuring the mass of a rock?",
        ["a ruler", "a balance", "a thermometer", "a graduated cylinder"],
        [
            "A ruler measures length.",
            "A balance compares an object with known masses, so it measures mass.",
            "A thermometer measures temperature.",
            "A graduated cylinder measures the volume of a liquid.",
        ],
        "B",
    ),
]


def example(row: dict, ident: str, where: str) -> dict:
    question, options, answer = choice.read_row(row, where)
    return {"id": ident, "question": question, "choices": options, "answer": answer, "source_id": row.get("id")}


def load(split: str = DEFAULT_SPLIT, path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    rows = data.rows(split, path, HUB)
    out = [example(r, f"arc-{split}-{i}", f"{path or HUB[0]} {split} record {i}") for i, r in enumerate(rows)]
    return out[:limit] if limit else out


def shot_pool(path: str | Path | None = None) -> list[dict]:
    return SHOTS


def prefix(example: dict) -> str:
    return choice.prefix(example["question"], example["choices"])


# ----------------------------------------------------------------------------- data stages (rationalyst.md 2, 3.2)


def mining_examples(path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """The rows the data stages read: prefilter references and extraction documents (train)."""
    return load("train", path, limit)


def reference_text(example: dict) -> str:
    """Question + the option texts, one per line (rationalyst.md 2)."""
    return example["question"] + "\n" + "\n".join(example["choices"])


def document_text(example: dict) -> str:
    """3.2 (built by the reference, not mined by it): the question, the options, the gold letter."""
    return f"{prefix(example)} The answer is {example['answer']}"
