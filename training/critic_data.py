"""Critic training data from rule-based perturbations of gold reasoning (refiner.md section 2).

MWP (2.2, with the reference's bugs fixed): for each problem and its gold formula z,
  numbers   one operand replaced by a different numberN of the problem
  operator  one step's operator replaced by a different one (subtract included: the reference
            listed `subtract` but the data spells `substract`, so subtraction was never perturbed)
  remove    formulas of 2+ steps cut to their first step (as the reference)
  add       one-step formulas get a step `#1: op ( #0, numberN )`
each with the oracle feedback of 2.3 (every step reported, operands at their true positions).
sNLR (2.5) and Moral Stories (2.4): the task module's `perturbations(example, rng)` gives (kind, wrong z)
and its oracle `critique(example, z)` the feedback (common/tasks/snlr.py, common/tasks/moral_stories.py).
The random generator is seeded per example (seed, id), so a record does not depend on the others.
Writes two record sets (refiner_format.py layouts):
  <output>/critic/  {"id", "kind", "input": x + hypothesis, "target": feedback}   incl. the gold (-> "No hint.")
  <output>/refine/  {"id", "kind", "input": x + hypothesis + feedback, "target": gold z}   (feedback not "No hint.")
The manifest counts the records of each perturbation kind.

    python -m training.critic_data --input ../shared/data/svamp/mawps-asdiv-a_svamp_train.csv --output runs/critic
    python -m training.critic_data --task snlr --input ../shared/data/refiner/srn/srn_train.json --output runs/critic-snlr
    python -m training.critic_data --config configs/demo/critic_data-moral_stories.yaml --output runs/critic-ms
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import BadRecordError, ReadStats, write_manifest, write_records
from common.config import StageConfig, option, parse_config
from common.refiner_format import NO_HINT, critic_input, is_no_hint, refine_input
from common.stage import log, setup_logging, stage_manifest
from common.tasks import mwp, refiner

PERTURBATIONS = ("numbers", "operator", "remove", "add")


@dataclass
class CriticDataConfig(StageConfig):
    task: str = option("mwp", "task: mwp, snlr or moral_stories (common.tasks.refiner)")
    include_gold: bool = option(True, "also a critic record for the gold formula (target: 'No hint.')")


def render(steps: list[mwp.Step]) -> str:
    return " | ".join(f"#{k}: {s.op} ( {s.a}, {s.b} )" for k, s in enumerate(steps)) + " | EOS"


def perturb(formula: str, n_numbers: int, kind: str, rng: random.Random) -> str | None:
    """One perturbed formula of the given kind, or None when the kind does not apply."""
    parsed = mwp.parse(formula)
    if isinstance(parsed, str):
        return None
    steps = list(parsed)
    if kind == "operator":
        k = rng.randrange(len(steps))
        steps[k] = mwp.Step(rng.choice([o for o in mwp.OPS if o != steps[k].op]), steps[k].a, steps[k].b)
    elif kind == "numbers":
        slots = [(k, side) for k, s in enumerate(steps) for side in ("a", "b") if getattr(s, side).startswith("number")]
        if not slots:
            return None
        k, side = rng.choice(slots)
        old = getattr(steps[k], side)
        choices = [f"number{n}" for n in range(max(n_numbers, 2)) if f"number{n}" != old]
        steps[k] = mwp.Step(steps[k].op, *((rng.choice(choices), steps[k].b) if side == "a"
                                          else (steps[k].a, rng.choice(choices))))
    elif kind == "remove":
        if len(steps) < 2:
            return None
        steps = steps[:1]
    elif kind == "add":
        if len(steps) != 1:
            return None
        steps.append(mwp.Step(rng.choice(mwp.OPS), "#0", f"number{rng.randrange(max(n_numbers, 1))}"))
    else:
        raise ValueError(f"unknown perturbation {kind!r}")
    return render(steps)


def example_rng(seed: int, example_id: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}\x00{example_id}".encode()).digest()[:8], "big"))


def mwp_records(problems: list[dict], seed: int, include_gold: bool) -> tuple[list[dict], list[dict], dict]:
    critic, refine, counts = [], [], {k: 0 for k in PERTURBATIONS}
    for p in problems:
        rng = example_rng(seed, p["id"])
        n_numbers = len(p["numbers"]) if p["numbers"] else 1 + max(
            (int(t[6:].rstrip(",")) for t in p["formula"].split() if t.startswith("number")), default=0)
        if include_gold:
            critic.append({"id": f"{p['id']}-gold", "kind": "gold", "input": critic_input(p["question"], p["formula"]),
                           "target": NO_HINT})
        for kind in PERTURBATIONS:
            wrong = perturb(p["formula"], n_numbers, kind, rng)
            if wrong is None:
                continue
            feedback = mwp.oracle_feedback(wrong, p["formula"])
            counts[kind] += 1
            critic.append({"id": f"{p['id']}-{kind}", "kind": kind, "input": critic_input(p["question"], wrong),
                           "target": feedback})
            refine.append({"id": f"{p['id']}-{kind}", "kind": kind,
                           "input": refine_input(p["question"], wrong, feedback), "target": p["formula"]})
    return critic, refine, counts


def task_records(task, examples: list[dict], seed: int, include_gold: bool) -> tuple[list[dict], list[dict], dict]:
    """Critic and refinement records of a task module (common.tasks.refiner interface + perturbations)."""
    critic, refine, counts = [], [], {k: 0 for k in task.PERTURBATIONS}
    for ex in examples:
        if include_gold:
            critic.append({"id": f"{ex['id']}-gold", "kind": "gold", "input": critic_input(ex["x"], ex["z"]),
                           "target": NO_HINT})
        for n, (kind, wrong) in enumerate(task.perturbations(ex, example_rng(seed, ex["id"]))):
            feedback = task.critique(ex, wrong)
            rid = f"{ex['id']}-{n}-{kind}"
            counts[kind] += 1
            critic.append({"id": rid, "kind": kind, "input": critic_input(ex["x"], wrong), "target": feedback})
            if not is_no_hint(feedback):
                refine.append({"id": rid, "kind": kind, "input": refine_input(ex["x"], wrong, feedback),
                               "target": ex["z"]})
    return critic, refine, counts


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(CriticDataConfig, argv, __doc__)
    try:
        task = refiner.get(cfg.task)
    except ValueError as exc:
        raise SystemExit(f"--task: {exc}") from None
    setup_logging()
    started = time.time()
    files = [f.strip() for f in cfg.input.split(",") if f.strip()]
    stats = ReadStats()
    try:
        if cfg.task == "mwp":
            problems = [p for f in files for p in mwp.load(f)]
            critic, refine, counts = mwp_records(problems, cfg.seed, cfg.include_gold)
            counts["problems"] = len(problems)
        else:
            examples = [e for f in files for e in task.load_examples(f, cfg.on_bad_record, stats)]
            critic, refine, counts = task_records(task, examples, cfg.seed, cfg.include_gold)
            counts.update(examples=len(examples), bad_records=stats.bad)
    except (BadRecordError, FileNotFoundError) as exc:
        raise SystemExit(f"critic_data: {exc}") from None
    out = Path(cfg.output)
    counts.update(critic=write_records(out / "critic", critic), refine=write_records(out / "refine", refine))
    write_manifest(out, 0, 1, stage_manifest("critic_data", cfg, counts, started,
                                             bad_record_examples=stats.bad_examples))
    log.info("critic_data: %s", counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
