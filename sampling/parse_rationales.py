"""Parse rationale rewrites into (preceding, rationale, following) triples (rationalyst.md 4.1).

Reads extract_rationales output {"id", "source", "input", "output"}. A document whose rewrite,
with rationales removed, is less than `min_faithfulness` similar to its input (edit distance,
whitespace ignored) is dropped as unfaithful. Otherwise each <BOT>...<EOT> becomes a triple:
  {"id": "<doc id>-r<k>", "doc_id", "source", "preceding", "rationale", "following", "index", "left_steps"}
where `following` is only the next segment and `preceding` all earlier original text.
Malformed rationales (no <EOT>) and triples with an empty part are counted and skipped.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from common.config import StageConfig, option, parse_config
from common.rationales import faithfulness, split_triples
from common.stage import run_stage


@dataclass
class ParseConfig(StageConfig):
    min_faithfulness: float = option(
        0.9, "keep a rewrite whose text without rationales is this similar to the input (rationalyst.md 4.1)"
    )
    batch_size: int = option(256, "documents per write batch")


def parse_document(doc: dict, min_faithfulness: float, counts: dict[str, int]) -> list[dict]:
    score = faithfulness(doc["input"], doc["output"])
    if score < min_faithfulness:
        counts["docs_unfaithful"] += 1
        return []
    parsed = split_triples(doc["output"])
    counts["triples_malformed"] += parsed.malformed
    counts["triples_empty"] += parsed.empty
    if not parsed.triples:
        counts["docs_without_rationales"] += 1
    return [
        {
            "id": f"{doc['id']}-r{t.index}",
            "doc_id": doc["id"],
            "source": doc.get("source"),
            "preceding": t.preceding,
            "rationale": t.rationale,
            "following": t.following,
            "index": t.index,
            "left_steps": t.left_steps,
            "faithfulness": round(score, 4),
        }
        for t in parsed.triples
    ]


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(ParseConfig, argv, __doc__)
    counts = {"docs_unfaithful": 0, "docs_without_rationales": 0, "triples_malformed": 0, "triples_empty": 0}
    return run_stage(
        "parse_rationales",
        cfg,
        lambda batch: [parse_document(d, cfg.min_faithfulness, counts) for d in batch],
        batch_size=cfg.batch_size,
        required=("id", "input", "output"),
        extra_counts=counts,
    )


if __name__ == "__main__":
    sys.exit(main())
