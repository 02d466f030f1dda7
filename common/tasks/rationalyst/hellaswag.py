"""HellaSwag (Zellers et al. 2019): choose the most plausible ending of an ActivityNet or WikiHow snippet.

Rows (`Rowan/hellaswag`, or the original `hellaswag_{train,val,test}.jsonl`): {"ind", "activity_label",
"ctx_a", "ctx_b", "ctx", "endings" (4), "source_id", "split", "split_type", "label"}; the label is a
string on the Hub and an int in the original files. The test labels are hidden, so the default split is
validation (10,042). The reference has no inference code for HellaSwag (rationalyst.md 6.2): it is run
here in ARC's layout, "Question: ...\\nChoices: A - ... D - ...\\nAnswer:", with 4 hand-written few-shot
items (this project's own), one step per ending, then "The answer is: X". WikiHow's "[title]"/"[step]"
markers are cleaned as in common HellaSwag preprocessing.
"""

from __future__ import annotations

import re
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
HUB = ("Rowan/hellaswag", None)
DEFAULT_SPLIT, DEFAULT_SHOTS = "validation", 4
QUESTION = "Which ending continues the text most plausibly? "
SYSTEM = (
    "Choose the most plausible continuation of the text. Look at every ending in turn, one sentence per "
    'step and only the next sentence each time, then finish with "The answer is: <letter>".'
)


def clean(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return " ".join(text.split())


def _shot(context: str, endings: list[str], notes: list[str], answer: str) -> dict:
    return {
        "id": f"hellaswag-shot-{context[:20]}",
        "question": QUESTION + context,
        "choices": endings,
        "answer": answer,
        "steps": [f"({l}) {n}" for l, n in zip(LETTERS, notes)] + [f"The answer is: {answer}"],
    }


SHOTS = [
    _shot(
        "Making tea: A woman fills a kettle with water and sets it on the stove. She",
        [
            "takes a mug from the cupboard and drops a tea bag into it while the water heats.",
            "throws the kettle into the garden and starts to sing.",
            "pours the cold water onto the floor and leaves the kitchen.",
            "puts the stove in the fridge to cool it down.",
        ],
        [
            "Getting a mug and a tea bag ready while the water heats is the next step of making tea.",
            "Throwing the kettle away makes no sense when she has just filled it.",
            "Pouring the water on the floor undoes what she was doing for no reason.",
            "A stove does not go in a fridge.",
        ],
        "A",
    ),
    _shot(
        "Washing a car: A man sprays his car all over with a garden hose. He",
        [
            "paints the windows black with a brush.",
            "eats the sponge and climbs onto the roof.",
            "scrubs the doors with a soapy sponge and then rinses the soap off.",
            "drives the car into a lake to finish the job.",
        ],
        [
            "Painting the windows is not part of washing a car.",
            "Nobody eats a sponge while washing a car.",
            "Scrubbing with soap and rinsing is how a wash continues after wetting the car.",
            "Driving into a lake would wreck the car rather than clean it.",
        ],
        "C",
    ),
    _shot(
        "How to plant a seed: Fill a small pot with potting soil. Press a hole about a finger deep into the middle.",
        [
            "Fill the hole with glue so the soil stays in place.",
            "Throw the pot away and buy a plant instead.",
            "Wrap the pot in foil so no light or water can reach it.",
            "Drop the seed into the hole, cover it with soil and water it gently.",
        ],
        [
            "Glue would stop the seed from being planted and the roots from growing.",
            "Throwing the pot away abandons the task the text describes.",
            "A seed needs water and the seedling needs light, so wrapping the pot works against it.",
            "Putting the seed in the hole, covering and watering it is the natural next step.",
        ],
        "D",
    ),
    _shot(
        "Playing basketball: A girl dribbles the ball down the court toward the hoop. She",
        [
            "sits down in the middle of the court to read a book.",
            "jumps and shoots, and the ball drops through the net.",
            "kicks the ball into the crowd and the game turns into soccer.",
            "puts the ball in her bag and walks home.",
        ],
        [
            "Stopping to read in the middle of play does not fit a player driving to the hoop.",
            "Dribbling toward the hoop usually ends in a shot, so this follows.",
            "A basketball game does not turn into soccer.",
            "Leaving with the ball in the middle of an attack is very unlikely.",
        ],
        "B",
    ),
]


def example(row: dict, ident: str, where: str) -> dict:
    label = row.get("label")
    if label is None or str(label).strip() == "":
        raise ValueError(f"{where}: no label (HellaSwag's test labels are hidden; use the validation split)")
    endings = [clean(e) for e in row["endings"]]
    gold = int(label)
    if not 0 <= gold < len(endings):
        raise ValueError(f"{where}: label {label!r} out of range")
    context = clean(f"{row['activity_label']}: {row['ctx']}")
    return {
        "id": ident,
        "question": QUESTION + context,
        "choices": endings,
        "answer": LETTERS[gold],
        "source_id": row.get("ind"),
    }


def load(split: str = DEFAULT_SPLIT, path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    rows = data.rows(split, path, HUB, ("activity_label", "ctx", "endings", "label"))
    out = [example(r, f"hellaswag-{split}-{i}", f"{path or HUB[0]} {split} record {i}") for i, r in enumerate(rows)]
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
    return example["question"] + "\n" + "\n".join(example["choices"])


def document_text(example: dict) -> str:
    """3.2 (built by the reference, not mined by it): the context, the endings, the gold letter."""
    return f"{prefix(example)} The answer is {example['answer']}"
