"""Benchmarks, each defined once: loading (Hub or original-format file), few-shot layout, answer extraction,
scoring. RATIONALYST's seven (rationalyst.md 6.2) are modules with the same interface:

  DEFAULT_SPLIT, DEFAULT_SHOTS      the split answered and the number of few-shot items (6.2)
  load(split, path=None, limit=None) -> [{id, question, answer, ...}]   `answer` is the normalised gold
  shot_pool(path=None) -> [example]  items the few-shot turns are drawn from (data, or hand-written)
  shot_key(example) -> str           optional: shots are drawn per key (MMLU-Pro: per category);
                                     without it, one group
  system_prompt(example) -> str|None optional: without it, the module's SYSTEM, or none (GSM8K)
  prefix(example) -> str             the question as the user turn, e.g. "Question: ...\\nAnswer:"
  shot_steps(example) -> [str]       a few-shot item's assistant turns, one per reasoning step
  predict(text, example, mode) -> str|None    answer extraction, mode "strict" or "flexible"
  is_correct(prediction, gold) -> bool
  states_answer(step) -> bool        the step ends the trajectory
  mining_examples(path=None, limit=None) -> [example]   what the data stages read (a train split)
  reference_text(example) -> str     a prefilter reference document (rationalyst.md 2)
  document_text(example) -> str      an extraction document (rationalyst.md 3.2)
A data set is named NAME (from the Hub, or generated) or NAME=PATH (a local file or folder in the set's
original format); `parse_dataset` reads that spec for every stage.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from common.registry import lookup
from common.tasks.rationalyst import (
    arc,
    chain_sum,
    competition_math,
    ecqa,
    gsm8k,
    gsm_symbolic,
    hellaswag,
    mmlu_pro,
    proofwriter,
)

# the paper's seven benchmarks (6.2)
TASKS = {
    "gsm8k": gsm8k,
    "math": competition_math,
    "ecqa": ecqa,
    "hellaswag": hellaswag,
    "proofwriter": proofwriter,
    "arc": arc,
    "mmlu_pro": mmlu_pro,
}
# generated offline (no Hub, no files): the demo's and the tests' data
OFFLINE = {"gsm_symbolic": gsm_symbolic, "chain_sum": chain_sum}


def get_task(name: str):
    return lookup({**TASKS, **OFFLINE}, name, "task")


def parse_dataset(spec: str):
    """(name, task module, local path or None) of NAME or NAME=PATH."""
    name, _, path = spec.partition("=")
    name = name.strip()
    return name, get_task(name), (path.strip() or None)


def reference_texts(specs: list[str], limit: int = 0) -> Iterator[str]:
    """Prefilter's reference documents (2) of every data set, in order."""
    for spec in specs:
        _, task, path = parse_dataset(spec)
        for ex in task.mining_examples(path, limit or None):
            yield task.reference_text(ex)


def documents(specs: list[str], limit: int = 0) -> Iterator[dict]:
    """Extraction input records {"id", "source", "text"} (3.2) of every data set."""
    for spec in specs:
        name, task, path = parse_dataset(spec)
        for i, ex in enumerate(task.mining_examples(path, limit or None)):
            yield {"id": f"{name}-{i}", "source": name, "text": task.document_text(ex)}


def shot_key(task, example: dict) -> str:
    return task.shot_key(example) if hasattr(task, "shot_key") else ""


def system_prompt(task, example: dict) -> str | None:
    return task.system_prompt(example) if hasattr(task, "system_prompt") else getattr(task, "SYSTEM", None)


def choose_shots(task, pool: list[dict], n: int, seed: int, exclude: set[str] = frozenset()) -> dict[str, list[dict]]:
    """n items per shot key, drawn with `seed` (the same items for every question of a key); items whose
    question text is in `exclude` (the questions being answered) are never drawn. With n >= the pool
    (hand-written shots) the written order is kept."""
    groups: dict[str, list[dict]] = {}
    for ex in pool:
        if ex["question"] not in exclude:
            groups.setdefault(shot_key(task, ex), []).append(ex)
    return {k: v if n >= len(v) else random.Random(seed).sample(v, n) for k, v in groups.items()}


def context(task, example: dict, shots: dict[str, list[dict]], one_turn: bool = False) -> list[dict]:
    """6.2: [system] + per shot (user = its prefix, one assistant turn per step) + user = the question's prefix.
    `one_turn`: each shot's steps as one assistant turn (plain few-shot chain of thought)."""
    messages = []
    system = system_prompt(task, example)
    if system:
        messages.append({"role": "system", "content": system})
    for shot in shots.get(shot_key(task, example), []):
        messages.append({"role": "user", "content": task.prefix(shot)})
        steps = task.shot_steps(shot)
        messages += [{"role": "assistant", "content": s} for s in ([" ".join(steps)] if one_turn else steps)]
    messages.append({"role": "user", "content": task.prefix(example)})
    return messages
