"""The loop every stage shares: shard, skip what is done, batch, write, record failures, manifest.

A stage script supplies its input records and a `process(batch) -> results` function, where
each result is the list of output records for that input, or a `Failed(error)`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from common.artifacts import (
    ReadStats,
    ShardWriter,
    file_digest,
    git_commit,
    input_files,
    package_versions,
    read_records,
    shard_name,
    shard_slice,
    write_manifest,
)
from common.config import StageConfig, config_dict

log = logging.getLogger("procsup")

# Options that may change between a run and its resumption without changing the outputs.
RESUME_SAFE_KEYS = {
    "shard_index",
    "base_url",
    "concurrency",
    "max_retries",
    "request_timeout",
    "unreachable_after",
    "device",
    "max_batch_tokens",
    "batch_size",
    "on_bad_record",
    "prefix_reuse",
    "kv_cache_tokens",
    "tokenizer",
}
EXIT_FAILURES = 3  # some inputs failed: outputs kept, shard left open, rerun retries them


@dataclass
class Failed:
    error: str


Result = list[dict[str, Any]] | Failed


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr, force=False
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


def run_stage(
    stage: str,
    cfg: StageConfig,
    process: Callable[[list[dict[str, Any]]], list[Result]],
    *,
    records: Iterable[dict[str, Any]] | None = None,
    batch_size: int = 16,
    required: tuple[str, ...] = ("id",),
    total: int | None = None,
    extra_counts: dict[str, int] | None = None,
    extra_info: Callable[[], dict] | None = None,
    presharded: bool = False,
    read_stats: ReadStats | None = None,
) -> int:
    """Run one shard of a stage. Returns the process exit code (0, or EXIT_FAILURES).

    `records` defaults to the JSONL input (`cfg.input`); `presharded` says they are this shard's
    already (a Hub stream split by the data set), so the runner does not slice them again."""
    setup_logging()
    check_same_config(cfg)
    writer = ShardWriter(cfg.output, cfg.shard_index, cfg.num_shards)
    if writer.finished:
        log.info("%s: %s is finished; skipping (delete it to redo)", stage, writer.final)
        return 0
    started = time.time()
    stats = read_stats or ReadStats()
    if records is None:
        records = read_records(cfg.input, cfg.on_bad_record, stats, required)
    counts = {"in": 0, "skipped_done": 0, "out": 0, "failed": 0}

    def flush(batch: list[tuple[int, dict[str, Any]]]) -> None:
        if not batch:
            return
        results = process([rec for _, rec in batch])
        if len(results) != len(batch):
            raise RuntimeError(f"{stage}: process returned {len(results)} results for {len(batch)} inputs")
        for (ordinal, rec), result in zip(batch, results):
            if isinstance(result, Failed):
                writer.fail(rec["id"], result.error, rec)
            else:
                writer.write(rec["id"], ordinal, result)
        bar.update(len(batch))
        batch.clear()

    seen: set[str] = set()
    with writer:
        # in a batch job's log (no terminal) a line a minute, rather than no progress at all
        bar = tqdm(
            total=total,
            desc=f"{stage} shard {cfg.shard_index}/{cfg.num_shards}",
            unit="rec",
            mininterval=2.0 if sys.stderr.isatty() else 60.0,
        )
        pending: list[tuple[int, dict[str, Any]]] = []
        mine = records if presharded else shard_slice(records, cfg.shard_index, cfg.num_shards)
        for ordinal, rec in enumerate(mine):
            counts["in"] += 1
            rid = rec["id"] = str(rec["id"])
            if rid in seen:
                raise ValueError(f"{stage}: duplicate input id {rid!r}; ids must be unique")
            seen.add(rid)
            if rid in writer.done_ids:
                counts["skipped_done"] += 1
                bar.update(1)
                continue
            pending.append((ordinal, rec))
            if len(pending) >= batch_size:
                flush(pending)
        flush(pending)
        bar.close()
        finished = writer.close(finalize=True)

    counts.update(out=writer.records_out, failed=writer.failed, bad_records=stats.bad)
    counts.update(extra_counts or {})
    info = stage_manifest(stage, cfg, counts, started, finished, bad_record_examples=stats.bad_examples)
    if extra_info:
        info.update(extra_info())
    write_manifest(cfg.output, cfg.shard_index, cfg.num_shards, info)
    if not finished:
        log.error(
            "%s: %d input(s) failed; see %s. Outputs so far are kept: rerun the same command to retry them.",
            stage,
            writer.failed,
            writer.failures_path,
        )
        return EXIT_FAILURES
    log.info("%s: shard %d/%d done: %s", stage, cfg.shard_index, cfg.num_shards, counts)
    return 0


def shard_finished(cfg: StageConfig, stage: str) -> bool:
    """True when this shard's output is already finished. Stages call it before loading models,
    so a resubmitted array task that has nothing to do exits in seconds, not after loading an 8B model."""
    setup_logging()
    final = Path(cfg.output) / shard_name(cfg.shard_index, cfg.num_shards)
    if not final.exists():
        return False
    check_same_config(cfg)
    log.info("%s: %s is finished; skipping (delete it to redo)", stage, final)
    return True


def check_same_config(cfg: StageConfig) -> None:
    """Refuse to resume into an output directory written with other settings: its finished shards
    would be silently mixed with new ones."""
    path = Path(cfg.output) / "manifest.json"
    if not path.exists():
        return
    old = json.loads(path.read_text()).get("config") or {}
    new = config_dict(cfg)
    changed = sorted(k for k in set(old) | set(new) if k not in RESUME_SAFE_KEYS and old.get(k) != new.get(k))
    if changed:
        raise SystemExit(
            f"{cfg.output} was written with different settings ({', '.join(changed)}: "
            f"{[old.get(k) for k in changed]} then, {[new.get(k) for k in changed]} now). "
            "Use a new --output, or delete it to start over."
        )


def stage_manifest(
    stage: str, cfg: StageConfig, counts: dict, started: float, finished: bool = True, **extra: Any
) -> dict[str, Any]:
    """One shard's manifest: resolved config, git commit, package versions, inputs, counts, wall time."""
    return {
        "stage": stage,
        "shard": cfg.shard_index,
        "num_shards": cfg.num_shards,
        "finished": finished,
        "config": config_dict(cfg),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "inputs": describe_inputs(cfg.input),
        "counts": counts,
        "wall_seconds": round(time.time() - started, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def describe_inputs(path: str) -> list[dict[str, Any]]:
    if not path:
        return []
    try:
        return [file_digest(p) for p in input_files(path)]
    except (FileNotFoundError, RuntimeError):
        return [{"path": str(Path(path))}]
