"""Generator records for REFINER (refiner.md 3): one {"id", "input": x, "target": z} per problem,
from a task's data file, for the warm start (`training.finetune --mode seq2seq`).

The paper warm-starts on 10% of the training data (`--fraction 0.1`). `--dev-fraction` holds
out part of the training problems as a dev set (written to <output>/dev/), so checkpoints are not
chosen on the test distribution (the reference's MWP "val" file is SVAMP, i.e. the test set, 1.1).

    python -m training.refiner_examples --task mwp --input ../shared/data/svamp/mawps-asdiv-a_svamp_train.csv \
        --output runs/mwp/examples --dev-fraction 0.1
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import write_manifest, write_records
from common.config import StageConfig, option, parse_config
from common.stage import log, setup_logging, stage_manifest
from common.tasks import refiner as refiner_tasks


@dataclass
class RefinerExamplesConfig(StageConfig):
    task: str = option("mwp", "REFINER task: mwp, snlr or moral_stories")
    fraction: float = option(1.0, "share of the (non-dev) problems written to train/ (paper warm start: 0.1)")
    dev_fraction: float = option(0.0, "share of the problems held out to dev/ (0 = no dev/)")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(RefinerExamplesConfig, argv, __doc__)
    if not cfg.input or not cfg.output:
        raise SystemExit("--input and --output are required")
    setup_logging()
    started = time.time()
    task = refiner_tasks.get_task(cfg.task)
    examples = [e for f in cfg.input.split(",") for e in task.load_examples(f.strip())]
    train, dev = refiner_tasks.split_examples(examples, cfg.fraction, cfg.dev_fraction, cfg.seed)
    out = Path(cfg.output)
    counts = {"examples": len(examples), "train": write_records(out / "train", [_record(e) for e in train])}
    if dev:
        counts["dev"] = write_records(out / "dev", [_record(e) for e in dev])
    write_manifest(out, 0, 1, stage_manifest("refiner_examples", cfg, counts, started))
    log.info("refiner_examples: %s", counts)
    return 0


def _record(example: dict) -> dict:
    return {"id": example["id"], "input": example["x"], "target": example["z"]}


if __name__ == "__main__":
    sys.exit(main())
