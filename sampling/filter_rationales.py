"""Keep the rationales that make the following text more likely, and split train/dev
(rationalyst.md 4.2-4.3).

Keep a triple when gain = S_with - S_without >= tau (the reference's rule is tau = 0, which also
keeps neutral rationales; raise tau to demand a real gain). The split is seeded and per id
(hash(seed, id) < dev_fraction goes to dev), so it does not depend on order or sharding; the
paper's ratio is 95/5. Writes, for shard i of n (--shard-index, --num-shards),
  <output>/train/part-0000i-of-0000n.jsonl, <output>/dev/part-0000i-of-0000n.jsonl, manifest.json
with records {"id", "source", "preceding", "rationale", "following", "gain"}.
With --labels FILE (JSONL or TSV with `label` 1/0 and `id`, or preceding/rationale/following),
the manifest reports the filter's precision and recall against those human labels.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import ReadStats, read_records, shard_slice, write_manifest, write_records
from common.config import StageConfig, option, parse_config
from common.stage import log, require_output, setup_logging, stage_manifest

KEEP_FIELDS = ("id", "source", "preceding", "rationale", "following", "gain")
REQUIRED_FIELDS = (*KEEP_FIELDS[:-1], "score_with", "score_without")  # gain is computed from the scores


@dataclass
class FilterConfig(StageConfig):
    tau: float = option(0.0, "keep when score_with - score_without >= tau (reference: 0)")
    dev_fraction: float = option(0.05, "share of kept triples in dev (paper: 95/5)")
    labels: str = option("", "optional JSONL/TSV of human labels (`label` 1/0) for precision/recall")


def in_dev(seed: int, rid: str, fraction: float) -> bool:
    h = hashlib.sha256(f"{seed}\x00{rid}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < fraction


def read_labels(path: str) -> dict:
    """{key: bool} with key = id, and also the (preceding, rationale, following) text."""
    p = Path(path)
    if p.suffix == ".tsv":
        with open(p, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    else:
        rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = {}
    for n, row in enumerate(rows, 2 if p.suffix == ".tsv" else 1):
        if "label" not in row:
            raise ValueError(f"{p}:{n}: no `label` field")
        value = str(row["label"]).strip().lower() in ("1", "true", "yes")
        if row.get("id"):
            labels[str(row["id"])] = value
        if row.get("preceding") is not None and row.get("rationale") is not None:
            labels[(row["preceding"].strip(), row["rationale"].strip(), row.get("following", "").strip())] = value
    return labels


def precision_recall(records: list[dict], kept: set[str], labels: dict) -> dict:
    tp = fp = fn = matched = 0
    for r in records:
        gold = labels.get(r["id"], labels.get((r["preceding"], r["rationale"], r["following"])))
        if gold is None:
            continue
        matched += 1
        pred = r["id"] in kept
        tp += pred and gold
        fp += pred and not gold
        fn += (not pred) and gold
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return {"labelled_matched": matched, "precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn}


def scored_records(cfg: FilterConfig, stats: ReadStats) -> Iterator[dict]:
    """This shard's scored triples; a record without a field the output needs, or with a score that is not
    a number, is a bad record (an error naming file and line, or skipped and counted)."""
    rows = read_records(cfg.input, cfg.on_bad_record, stats, REQUIRED_FIELDS, cfg.allow_incomplete)
    for r in shard_slice(rows, cfg.shard_index, cfg.num_shards):
        wrong = [
            f for f in ("score_with", "score_without") if isinstance(r[f], bool) or not isinstance(r[f], (int, float))
        ]
        if wrong:
            stats.reject(
                f"{stats.location}: {', '.join(wrong)} must be a number, got {r[wrong[0]]!r}", cfg.on_bad_record
            )
            continue
        yield r


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(FilterConfig, argv, __doc__)
    setup_logging()
    require_output(cfg)
    started, stats = time.time(), ReadStats()
    records = list(scored_records(cfg, stats))
    kept = [r for r in records if r["score_with"] - r["score_without"] >= cfg.tau]
    out = Path(cfg.output)
    counts = {"in": len(records), "kept": len(kept), "bad_records": stats.bad}
    for split in ("train", "dev"):
        rows = [r for r in kept if in_dev(cfg.seed, str(r["id"]), cfg.dev_fraction) == (split == "dev")]
        # cheap and deterministic: always redone
        counts[split] = write_records(
            out / split,
            ({**{f: r[f] for f in KEEP_FIELDS[:-1]}, "gain": r["score_with"] - r["score_without"]} for r in rows),
            cfg.shard_index,
            cfg.num_shards,
        )
    info = stage_manifest("filter_rationales", cfg, counts, started, bad_record_examples=stats.bad_examples)
    if cfg.labels:
        info["label_eval"] = precision_recall(records, {str(r["id"]) for r in kept}, read_labels(cfg.labels))
    write_manifest(out, cfg.shard_index, cfg.num_shards, info)
    log.info("filter_rationales: %s%s", counts, f"; against labels: {info['label_eval']}" if cfg.labels else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
