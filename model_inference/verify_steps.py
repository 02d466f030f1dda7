"""Score every step of every given solution with a step scorer (common.scorers), for measuring scorers on
labelled steps and by best-of-N reranking; model_inference.evaluate_steps turns the runs into the report.

Data (`--data`, common/tasks/steps.py): prmbench=PATH, processbench[=PATH or a split], prm800k=PATH,
gsm8k_solutions=PATH (best-of-N), perturbed:gsm8k=PATH, perturbed:gsm_symbolic, perturbed:mwp=PATH. Each
solution is shown to the scorer as the GSM8K layout of 6.2: the user turn "Question: ...\\nAnswer:", then one
assistant turn per step; step i is scored given the steps before it. Writes one record per solution: its
fields (steps, labels, first_error, ...) and `scores`, one per step, aligned with `steps`, plus `scorer`
and `score_scale`. With the `hf` backend a likelihood-type scorer runs each solution in one forward pass
(the steps' frames nest), and `rationalyst` computes the trajectory once for all of its rationales.

    python -m model_inference.verify_steps --data prmbench=../shared/data/prmbench/prmbench_subset400.jsonl \\
        --scorer likelihood --output runs/verify/prmbench-likelihood
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from common.config import StageConfig, option, parse_config
from common.llm import LLMOptions
from common.scorers import SCORERS, Backends, ScorerOptions, make_scorer, score_solutions
from common.stage import run_stage, shard_finished
from common.tasks import steps as step_data


@dataclass
class VerifyStepsConfig(StageConfig, LLMOptions, ScorerOptions):
    data: str = option("", "solutions with labelled steps: NAME=PATH (see the module docstring)")
    scorer: str = option("likelihood", "step scorer: " + ", ".join(SCORERS))
    limit: int = option(0, "first N questions (0 = all)")
    batch_size: int = option(8, "solutions per batch")


def prefix(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(VerifyStepsConfig, argv, __doc__)
    if not cfg.data:
        raise SystemExit("--data is required (e.g. prmbench=../shared/data/prmbench/prmbench_subset400.jsonl)")
    if shard_finished(cfg, "verify_steps"):
        return 0
    try:
        solutions = step_data.load(cfg.data, cfg.seed, cfg.limit)
        scorer = make_scorer(cfg.scorer, cfg, Backends(cfg))
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"verify_steps: {exc}") from None
    name = cfg.data.partition("=")[0]

    def process(batch: list[dict]) -> list[list[dict]]:
        shown = [{**s, "messages": [{"role": "user", "content": prefix(s["question"])}]} for s in batch]
        scores = score_solutions(scorer, shown)
        return [
            [{**s, "data": name, "scorer": cfg.scorer, "score_scale": scorer.scale, "scores": sc}]
            for s, sc in zip(batch, scores)
        ]

    return run_stage(
        "verify_steps", cfg, process, records=iter(solutions), batch_size=cfg.batch_size, total=len(solutions)
    )


if __name__ == "__main__":
    sys.exit(main())
