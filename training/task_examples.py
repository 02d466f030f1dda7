"""Supervised records for the SFT baseline (rationalyst.md 9: the agent fine-tuned on question -> solution
on the same data): one {"id", "prompt", "target"} per problem of a RATIONALYST task's split, the prompt in
the inference layout (6.2, "Question: ...\\nAnswer:") and the target the worked solution's steps, as the
few-shot turns write them, joined by spaces. Then `training.finetune --prompt-field prompt --target-field
target` fine-tunes the agent, and `model_inference.inference --heuristic cot --shots 0` evaluates it.

    python -m training.task_examples --dataset gsm8k=../shared/data/gsm8k --split train --output runs/sft/examples
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import write_manifest, write_records
from common.config import StageConfig, option, parse_config
from common.stage import log, setup_logging, stage_manifest
from common.tasks.rationalyst import parse_dataset


@dataclass
class TaskExamplesConfig(StageConfig):
    dataset: str = option(
        "gsm8k",
        "a RATIONALYST task with worked solutions: NAME or NAME=PATH (gsm8k, math, "
        "mmlu_pro's validation, ecqa's train, gsm_symbolic, chain_sum)",
    )
    split: str = option("train", "the split the records come from")
    limit: int = option(0, "first N problems (0 = all)")
    dev_fraction: float = option(0.05, "share held out to dev/ (the paper's 95/5)")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(TaskExamplesConfig, argv, __doc__)
    if not cfg.output:
        raise SystemExit("--output is required")
    setup_logging()
    started = time.time()
    try:
        _, task, path = parse_dataset(cfg.dataset)
    except ValueError as exc:
        raise SystemExit(f"--dataset: {exc}") from None
    examples = task.load(cfg.split, path, cfg.limit or None)
    records = [{"id": e["id"], "prompt": task.prefix(e), "target": " ".join(task.shot_steps(e))} for e in examples]
    n_dev = round(cfg.dev_fraction * len(records))
    out = Path(cfg.output)
    counts = {"examples": len(records), "train": write_records(out / "train", records[n_dev:])}
    if n_dev:
        counts["dev"] = write_records(out / "dev", records[:n_dev])
    write_manifest(out, 0, 1, stage_manifest("task_examples", cfg, counts, started))
    log.info("task_examples: %s", counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
