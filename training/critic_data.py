"""Critic training data from rule-based perturbations of gold reasoning (refiner.md section 2).

For every task the task module's `perturbations(example, rng)` gives (kind, wrong z) and its oracle
`critique(example, z)` the feedback: MWP numbers / operator / remove / add (2.2, common/tasks/refiner/mwp.py),
sNLR missing link / missing implicit knowledge / logically invalid (2.5, snlr.py), Moral Stories paraphrase /
contradiction / fake norm (2.4, moral_stories.py).
The random generator is seeded per example (seed, id), so a record does not depend on the others.
Writes two record sets (common/tasks/refiner/format.py layouts):
  <output>/critic/  {"id", "kind", "input": x + hypothesis, "target": feedback}   incl. the gold (-> "No hint.")
  <output>/refine/  {"id", "kind", "input": x + hypothesis + feedback, "target": gold z}   (feedback not "No hint.")
The manifest counts the records of each perturbation kind.

    python -m training.critic_data --input ../shared/data/svamp/mawps-asdiv-a_svamp_train.csv --output runs/critic
    python -m training.critic_data --task snlr --input ../shared/data/refiner/srn/srn_train.json --output runs/critic-snlr
    python -m training.critic_data --config configs/demo/critic_data-moral_stories.yaml --output runs/critic-ms
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import BadRecordError, ReadStats, write_manifest, write_records
from common.config import StageConfig, option, parse_config
from common.stage import log, require_output, setup_logging, stage_manifest
from common.tasks import refiner
from common.tasks.refiner import example_rng
from common.tasks.refiner.format import NO_HINT, critic_input, is_no_hint, refine_input


@dataclass
class CriticDataConfig(StageConfig):
    task: str = option("mwp", "task: mwp, snlr or moral_stories (common.tasks.refiner)")
    include_gold: bool = option(True, "also a critic record for the gold formula (target: 'No hint.')")


def task_records(
    task, examples: list[dict], seed: int, include_gold: bool, on_bad_record: str = "error", stats=None
) -> tuple[list[dict], list[dict], dict]:
    """Critic and refinement records of a task module (common.tasks.refiner interface + perturbations).
    An example whose records cannot be made (a gold formula that does not parse) is a bad record: an
    error naming it, or skipped and counted in `stats`."""
    critic, refine, counts = [], [], {k: 0 for k in task.PERTURBATIONS}
    for ex in examples:
        try:
            made = _example_records(task, ex, seed, include_gold)
        except Exception as exc:
            stats.reject(f"example {ex['id']!r}: {type(exc).__name__}: {exc}", on_bad_record, "records")
            continue
        for kind, c, r in made:
            critic.extend(c)
            refine.extend(r)
            if kind:
                counts[kind] += len(c)
    return critic, refine, counts


def _example_records(task, ex: dict, seed: int, include_gold: bool) -> list[tuple[str | None, list, list]]:
    """(kind, critic records, refinement records) for one example, all made before any is kept."""
    made: list[tuple[str | None, list, list]] = []
    if include_gold:
        made.append(
            (
                None,
                [
                    {
                        "id": f"{ex['id']}-gold",
                        "kind": "gold",
                        "input": critic_input(ex["x"], ex["z"]),
                        "target": NO_HINT,
                    }
                ],
                [],
            )
        )
    for n, (kind, wrong) in enumerate(task.perturbations(ex, example_rng(seed, ex["id"]))):
        feedback = task.critique(ex, wrong)
        rid = f"{ex['id']}-{n}-{kind}"
        critic = [{"id": rid, "kind": kind, "input": critic_input(ex["x"], wrong), "target": feedback}]
        refine = []
        if not is_no_hint(feedback):
            refine.append({"id": rid, "kind": kind, "input": refine_input(ex["x"], wrong, feedback), "target": ex["z"]})
        made.append((kind, critic, refine))
    return made


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(CriticDataConfig, argv, __doc__)
    try:
        task = refiner.get_task(cfg.task)
    except ValueError as exc:
        raise SystemExit(f"--task: {exc}") from None
    setup_logging()
    require_output(cfg)
    started = time.time()
    files = [f.strip() for f in cfg.input.split(",") if f.strip()]
    stats = ReadStats()
    try:
        examples = [e for f in files for e in task.load_examples(f, cfg.on_bad_record, stats)]
    except (BadRecordError, FileNotFoundError) as exc:
        raise SystemExit(f"critic_data: {exc}") from None
    try:
        critic, refine, counts = task_records(task, examples, cfg.seed, cfg.include_gold, cfg.on_bad_record, stats)
    except BadRecordError as exc:
        raise SystemExit(f"critic_data: {exc}") from None
    counts.update(examples=len(examples), bad_records=stats.bad)
    out = Path(cfg.output)
    counts.update(critic=write_records(out / "critic", critic), refine=write_records(out / "refine", refine))
    write_manifest(
        out, 0, 1, stage_manifest("critic_data", cfg, counts, started, bad_record_examples=stats.bad_examples)
    )
    log.info("critic_data: %s", counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
