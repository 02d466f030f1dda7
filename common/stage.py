"""The loop every stage shares: shard, skip what is done, batch, write, record failures, manifest.

A stage script supplies its input records and a `process(batch) -> results` function, where
each result is the list of output records for that input, or a `Failed(error)`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from common.artifacts import (
    ReadStats,
    ShardLock,
    ShardWriter,
    file_digest,
    git_commit,
    input_files,
    package_versions,
    read_records,
    redact,
    shard_slice,
    write_json_atomic,
    write_manifest,
)
from common.config import StageConfig, config_dict

log = logging.getLogger("procsup")

# Options that may change between a run and its resumption without changing the outputs.
RESUME_SAFE_KEYS = {
    "shard_index",
    "base_url",
    "concurrency",
    "streams",
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
PROCESSING_BAD = "_bad_in_processing"  # journal count key: records skipped because their processing raised
EXIT_FAILURES = 3  # some inputs failed: outputs kept, shard left open, rerun retries them


@dataclass
class Failed:
    error: str


Result = list[dict[str, Any]] | Failed


class RedactSecrets(logging.Filter):
    """Log lines without secrets (a password in a URL, a key echoed in a server's error body)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr, force=False
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())


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
    already (a Hub stream split by the data set), so the runner does not slice them again.
    The shard is locked for the whole run: a second process on it exits with a message naming the holder."""
    setup_logging()
    require_output(cfg)
    with ShardLock(cfg.output, cfg.shard_index, cfg.num_shards):
        return _run_locked_shard(
            stage, cfg, process, records, batch_size, required, total, extra_counts, extra_info, presharded, read_stats
        )


def _run_locked_shard(
    stage, cfg, process, records, batch_size, required, total, extra_counts, extra_info, presharded, read_stats
) -> int:
    check_same_config(cfg)
    writer = ShardWriter(cfg.output, cfg.shard_index, cfg.num_shards)
    if writer.finished:
        writer.clean_leftovers()
        log.info("%s: %s is finished; skipping (delete it to redo)", stage, writer.final)
        return 0
    started = time.time()
    stats = read_stats or ReadStats()
    if records is None:
        records = read_records(cfg.input, cfg.on_bad_record, stats, required, cfg.allow_incomplete)
    extra = extra_counts if extra_counts is not None else {}
    counts = {"in": 0, "out": 0, "failed": 0}
    poisoned = {"this_batch": 0, "this_run": 0}  # records whose processing raised, skipped (--on-bad-record skip)

    def flush(batch: list[tuple[int, dict[str, Any], str]]) -> None:
        if not batch:
            return
        before = dict(extra)
        results = _process_isolated(stage, process, batch, extra)
        done: list[tuple[str, int, list[dict[str, Any]]]] = []
        for (ordinal, rec, where), result in zip(batch, results):
            if isinstance(result, _PoisonRecord):
                message = f"{where}: {result.error}"
                if cfg.on_bad_record != "skip":
                    writer.fail(rec["id"], message, rec)
                    continue
                log.warning("%s: skipping a record that failed: %s", stage, message)
                poisoned["this_batch"] += 1
                if len(stats.bad_examples) < 5:
                    stats.bad_examples.append(message)
                done.append((rec["id"], ordinal, []))  # skipped for good: journalled with no output
            elif isinstance(result, Failed):
                writer.fail(rec["id"], result.error, rec)
            else:
                done.append((rec["id"], ordinal, result))
        delta = {k: v - before.get(k, 0) for k, v in extra.items()}
        delta[PROCESSING_BAD] = poisoned["this_batch"]
        poisoned["this_run"] += poisoned["this_batch"]
        poisoned["this_batch"] = 0
        writer.write_batch(done, delta)
        bar.update(len(batch))
        batch.clear()

    seen: set[str] = set()
    check_resume_settings(cfg, writer)
    with writer:
        if writer.done_ids:
            # run history, not in the manifest: a resumed shard's manifest equals a one-shot run's
            log.info("%s: resuming %s: %d input(s) already done", stage, writer.partial, len(writer.done_ids))
        if writer.dropped_on_resume:
            log.warning(
                "%s: %d journalled input(s) of %s had no data on disk; they are redone",
                stage,
                writer.dropped_on_resume,
                writer.partial,
            )
        # in a batch job's log (no terminal) a line a minute, rather than no progress at all
        bar = tqdm(
            total=total,
            desc=f"{stage} shard {cfg.shard_index}/{cfg.num_shards}",
            unit="rec",
            mininterval=2.0 if sys.stderr.isatty() else 60.0,
        )
        pending: list[tuple[int, dict[str, Any], str]] = []
        mine = (
            records if presharded else shard_slice(_unique_ids(stage, records, stats), cfg.shard_index, cfg.num_shards)
        )
        for ordinal, rec in enumerate(mine):
            counts["in"] += 1
            rid = rec["id"] = str(rec["id"])
            if rid in seen:
                raise ValueError(f"{stage}: duplicate input id {rid!r} ({stats.location}); ids must be unique")
            seen.add(rid)
            if rid in writer.done_ids:
                bar.update(1)
                continue
            pending.append((ordinal, rec, stats.location or f"input record {ordinal} (id {rid!r})"))
            if len(pending) >= batch_size:
                flush(pending)
        flush(pending)
        bar.close()

        def manifest(finished: bool) -> None:
            # counts over all runs of this shard: the journal holds what earlier runs counted
            resumed = writer.resumed_counts
            stage_counts = {k: v + resumed.get(k, 0) for k, v in extra.items()}
            stage_counts.update({k: v for k, v in resumed.items() if k not in extra and k != PROCESSING_BAD})
            bad = stats.bad + resumed.get(PROCESSING_BAD, 0) + poisoned["this_run"]
            counts.update(out=writer.records_out, failed=writer.failed, bad_records=bad)
            counts.update(stage_counts)
            info = stage_manifest(stage, cfg, counts, started, finished, bad_record_examples=stats.bad_examples)
            if extra_info:
                info.update(extra_info())
            write_manifest(cfg.output, cfg.shard_index, cfg.num_shards, info)

        finished = writer.close(finalize=True, before_commit=manifest)

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


def _unique_ids(stage: str, records: Iterable[dict[str, Any]], stats: ReadStats) -> Iterator[dict[str, Any]]:
    """The records, refusing an id seen before anywhere in the input, not only in this shard's slice (each
    shard reads the whole input, so every shard refuses it). Ids are kept as 64-bit digests: about 50 bytes
    per record, and a false duplicate has a chance of about n^2 / 2^65."""
    seen: set[int] = set()
    for rec in records:
        rid = str(rec["id"])
        digest = int.from_bytes(hashlib.blake2b(rid.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")
        if digest in seen:
            where = f" ({stats.location})" if stats.location else ""
            raise ValueError(f"{stage}: duplicate input id {rid!r}{where}; ids must be unique across the input")
        seen.add(digest)
        yield rec


@dataclass
class _PoisonRecord:
    """A record whose processing raised on its own (not in a batch): that record's failure."""

    error: str


def _restore(counts: dict[str, int], snapshot: dict[str, int]) -> None:
    counts.clear()
    counts.update(snapshot)


def _process_isolated(stage: str, process, batch, extra: dict[str, int]) -> list:
    """process(batch), and when it raises, each record alone, so one poison record fails by itself. The
    stage's counts are rolled back to before an attempt that raised, so nothing is counted twice. When
    every record also fails alone, the fault is not in the records: the first error is raised."""
    recs = [rec for _, rec, _ in batch]
    snapshot = dict(extra)
    try:
        results = process(recs)
    except Exception as exc:
        _restore(extra, snapshot)
        if len(recs) == 1:
            return [_PoisonRecord(f"{type(exc).__name__}: {exc}")]
        log.warning(
            "%s: a batch of %d raised (%s: %s); retrying its records one by one",
            stage,
            len(recs),
            type(exc).__name__,
            exc,
        )
        results = []
        for rec in recs:
            alone = dict(extra)
            try:
                (result,) = process([rec])
            except Exception as one_exc:
                _restore(extra, alone)
                result = _PoisonRecord(f"{type(one_exc).__name__}: {one_exc}")
            results.append(result)
        if all(isinstance(r, _PoisonRecord) for r in results):
            raise
        return results
    if len(results) != len(batch):
        raise RuntimeError(f"{stage}: process returned {len(results)} results for {len(batch)} inputs")
    return results


def check_resume_settings(cfg: StageConfig, writer: ShardWriter) -> None:
    """Refuse to resume a shard that an earlier run started with other settings or other input data: the
    settings and the input hashes are recorded beside the shard when it starts (`*.settings.json`), before
    any manifest exists, so an interrupted shard is never finished with a mix of both."""
    now = redact({"config": config_dict(cfg), "inputs": describe_inputs(cfg.input)})
    resuming = writer.journal_path.exists() and writer.journal_path.stat().st_size > 0
    if resuming and writer.settings_path.exists():
        then = json.loads(writer.settings_path.read_text())
        old, new = then.get("config") or {}, now["config"]
        changed = changed_settings(cfg, old, new)
        details = [f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in changed]
        if _input_identity(then.get("inputs")) != _input_identity(now["inputs"]):
            changed.append("input data")
            details.append(f"inputs: {_input_identity(then.get('inputs'))} then, {_input_identity(now['inputs'])} now")
        if changed:
            raise SystemExit(
                f"{writer.partial} was started with different settings or inputs ({', '.join(changed)}; "
                f"{'; '.join(details)}). Resume with the options and input it was started with, or delete "
                f"{writer.partial} and {writer.journal_path.name} to redo the shard."
            )
        return
    write_json_atomic(writer.settings_path, redact(now))


def _input_identity(inputs: list[dict] | None) -> list[tuple]:
    return [(d.get("path"), d.get("bytes"), d.get("sha256")) for d in inputs or []]


def require_output(cfg: StageConfig) -> None:
    """--output has no default: an empty one would write shards into the current directory."""
    if not str(cfg.output).strip():
        raise SystemExit("--output is required: the directory this stage writes its shards and manifest to")


def shard_finished(cfg: StageConfig, stage: str) -> bool:
    """True when this shard's output is already finished. Stages call it before loading models,
    so a resubmitted array task that has nothing to do exits in seconds, not after loading an 8B model."""
    setup_logging()
    require_output(cfg)
    with ShardLock(cfg.output, cfg.shard_index, cfg.num_shards):  # a busy shard exits here, before any model
        writer = ShardWriter(cfg.output, cfg.shard_index, cfg.num_shards)
        if not writer.finished:
            return False
        check_same_config(cfg)
        writer.clean_leftovers()
    log.info("%s: %s is finished; skipping (delete it to redo)", stage, writer.final)
    return True


def check_same_config(cfg: StageConfig) -> None:
    """Refuse to resume into an output directory written with other settings: its finished shards
    would be silently mixed with new ones."""
    path = Path(cfg.output) / "manifest.json"
    if not path.exists():
        return
    old = json.loads(path.read_text()).get("config") or {}
    new = redact(config_dict(cfg))  # as the manifest records it
    changed = changed_settings(cfg, old, new)
    if changed:
        raise SystemExit(
            f"{cfg.output} was written with different settings ({', '.join(changed)}: "
            f"{[old.get(k) for k in changed]} then, {[new.get(k) for k in changed]} now). "
            "Use a new --output, or delete it to start over."
        )


def changed_settings(cfg: StageConfig, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Options that differ and matter. An option missing from `old` (added to the stage since) counts as
    its default, so an upgrade alone does not refuse a resume."""
    defaults = {f.name: f.default for f in dataclasses.fields(cfg) if f.default is not dataclasses.MISSING}
    return sorted(
        k for k in set(old) | set(new) if k not in RESUME_SAFE_KEYS and old.get(k, defaults.get(k)) != new.get(k)
    )


def stage_manifest(
    stage: str, cfg: StageConfig, counts: dict, started: float, finished: bool = True, **extra: Any
) -> dict[str, Any]:
    """One shard's manifest: resolved config, git commit, package versions, inputs, counts, wall time, and
    the approximations the run stands on (e.g. a borrowed output head), stated where a reader looks."""
    config = config_dict(cfg)
    notes = approximations(config)
    return {
        "stage": stage,
        "shard": cfg.shard_index,
        "num_shards": cfg.num_shards,
        "finished": finished,
        "config": config,
        **({"approximations": notes} if notes else {}),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "inputs": describe_inputs(cfg.input),
        "counts": counts,
        "wall_seconds": round(time.time() - started, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def approximations(config: dict[str, Any]) -> list[str]:
    """What the run stands on that is not the model it names: a borrowed output head, given here
    (`missing_head`) or given when a model directory was written (training.attach_head's manifest)."""
    notes = [
        f"{key} = {value}: a checkpoint saved without its output head scores with {value[len('base:') :]}'s head"
        for key, value in config.items()
        if key.endswith("missing_head") and isinstance(value, str) and value.startswith("base:")
    ]
    for key, value in config.items():
        manifest = Path(value) / "manifest.json" if key.endswith("model") and isinstance(value, str) and value else None
        if manifest is not None and manifest.is_file():
            try:
                inherited = json.loads(manifest.read_text()).get("approximations") or []
            except (OSError, ValueError, AttributeError):
                inherited = []
            notes += [f"{key} = {value}, written with: {note}" for note in inherited]
    return notes


def describe_inputs(path: str) -> list[dict[str, Any]]:
    if not path:
        return []
    try:
        return [file_digest(p) for p in input_files(path, allow_incomplete=True)]
    except (FileNotFoundError, RuntimeError):
        return [{"path": str(Path(path))}]
