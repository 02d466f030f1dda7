"""REFINER's three tasks behind one interface (refiner.md §1), used by critic data, training and
prediction. Each task module provides:

  load_examples(path) -> list[dict]     records with at least "id", "x" (generator input) and
                                        "z" (gold intermediate representation), plus task fields
  critique(example, z) -> str           the oracle critic's feedback on a generated z against the
                                        example's gold; common.refiner_format.NO_HINT when correct
  metrics(examples, predictions) -> dict[str, float]
                                        the task's scores for generated z's, one per example
"""
import importlib

REFINER_TASKS = ("mwp", "snlr", "moral_stories")


def get(name: str):
    if name not in REFINER_TASKS:
        raise ValueError(f"unknown REFINER task {name!r}; choose from {', '.join(REFINER_TASKS)}")
    return importlib.import_module(f"common.tasks.{name}")
