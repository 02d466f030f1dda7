"""Score each triple's following text with and without its rationale (rationalyst.md 4.2).

S = sum_i 0.9^i * log p(following token i), in the scorer's chat frame: system, user =
preceding (+ " <BOT>rationale<EOT>"), assistant = following. The window is exactly the
following text's tokens (the spec's non-debug variant is off by one onto the frame's tokens).
Both variants share the frame up to the preceding text's last word (common.rationales.scoring_frame:
no token spans that cut): the `hf` backend computes it once; the `openai` backend sends token ids to
vLLM with echoed log-probs.

Reads parse_rationales output, or rows in the layout RATIONALYST released its rationales in ({preceeding
(sic), rationale, following}, no id: ids derived from the content, duplicates dropped and counted); writes
each triple with
  "score_with", "score_without", "gain" (= with - without), "logprobs_with", "logprobs_without".
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from common.artifacts import ReadStats, read_records
from common.config import StageConfig, option, parse_config
from common.llm import LLMOptions, make_backend
from common.rationales import DISCOUNT, branches_for, discounted_score, triples
from common.stage import Failed, run_stage, shard_finished


@dataclass
class ScoreConfig(StageConfig, LLMOptions):
    rationale_format: str = option(
        "bot_eot", "'bot_eot': preceding + ' <BOT>r<EOT>' (the spec's debug variant); 'plain': preceding + '. ' + r"
    )
    discount: float = option(DISCOUNT, "per-token discount of the score (rationalyst.md 4.2)")
    batch_size: int = option(32, "triples per backend call")


def score_triples(llm, triples: list[dict], fmt: str = "bot_eot", discount: float = DISCOUNT) -> list:
    """Each triple with its scores, or Failed when the backend could not score it."""
    scores = llm.score_branches(branches_for(llm.render_chat, triples, fmt))
    out = []
    for k, t in enumerate(triples):
        w, wo = scores[2 * k], scores[2 * k + 1]
        if w.error or wo.error:
            out.append(Failed(w.error or wo.error))
            continue
        s_with, s_without = discounted_score(w.logprobs, discount), discounted_score(wo.logprobs, discount)
        out.append(
            [
                {
                    **t,
                    "score_with": s_with,
                    "score_without": s_without,
                    "gain": s_with - s_without,
                    "logprobs_with": w.logprobs,
                    "logprobs_without": wo.logprobs,
                }
            ]
        )
    return out


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(ScoreConfig, argv, __doc__)
    if shard_finished(cfg, "score_rationales"):
        return 0
    if cfg.rationale_format not in ("bot_eot", "plain"):
        raise SystemExit("--rationale-format must be 'bot_eot' or 'plain'")
    llm = make_backend(cfg)
    counts: dict[str, int] = {}
    stats = ReadStats()
    rows = read_records(cfg.input, cfg.on_bad_record, stats, (), cfg.allow_incomplete)
    return run_stage(
        "score_rationales",
        cfg,
        lambda batch: score_triples(llm, batch, cfg.rationale_format, cfg.discount),
        records=triples(rows, counts),  # parse_rationales' triples, or RATIONALYST's released rows
        batch_size=cfg.batch_size,
        extra_counts=counts,
        read_stats=stats,
    )


if __name__ == "__main__":
    sys.exit(main())
