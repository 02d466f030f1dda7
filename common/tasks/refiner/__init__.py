"""REFINER's three tasks behind one interface (refiner.md §1), used by critic data, training and
prediction. Each task module provides:

  load_examples(path) -> list[dict]     records with at least "id", "x" (generator input) and
                                        "z" (gold intermediate representation), plus task fields
  critique(example, z) -> str           the oracle critic's feedback on a generated z against the
                                        example's gold; common.tasks.refiner.format.NO_HINT when correct
  metrics(examples, predictions) -> dict[str, float]
                                        the task's scores for generated z's, each a mean over examples
  HEADLINE                              the metrics key that refiner_predict's paired test compares
"""

import hashlib
import random

from common.registry import lookup
from common.tasks.refiner import moral_stories, mwp, snlr

TASKS = {"mwp": mwp, "snlr": snlr, "moral_stories": moral_stories}


def example_rng(seed: int, example_id: str) -> random.Random:
    """A random generator of its own for each example (seed, id), so an example's records do not depend on the
    others (critic_data, moral_stories_prep)."""
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}\x00{example_id}".encode()).digest()[:8], "big"))


def get_task(name: str):
    return lookup(TASKS, name, "REFINER task")


def split_examples(
    examples: list[dict], fraction: float, dev_fraction: float, seed: int
) -> tuple[list[dict], list[dict]]:
    """(train, dev): `dev_fraction` of the examples held out (seeded), then `fraction` of the rest kept for
    train; both in input order. The same seed gives the same split in every stage that uses it."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_dev = round(dev_fraction * len(examples))
    dev, rest = sorted(order[:n_dev]), sorted(order[n_dev:])
    train = sorted(rest[: max(1, round(fraction * len(rest)))]) if fraction < 1 else rest
    return [examples[i] for i in train], [examples[i] for i in dev]
