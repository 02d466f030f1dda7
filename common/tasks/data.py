"""Rows of a benchmark, from the Hub or from a local copy in the format the set ships in.

A local PATH is a file (`.jsonl`, `.json` holding a list or one object, `.parquet`) or a folder. In a
folder the split's file is found by name: `test.jsonl`, `data/test-00000-of-00001.parquet` (a Hub
snapshot), `ARC-Challenge-Test.jsonl` or `hellaswag_val.jsonl` (original releases); a sub-folder named
after the split is read whole (MATH's original `test/<subject>/<n>.json` layout).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from common.artifacts import read_jsonl

SUFFIXES = (".jsonl", ".json", ".parquet")
SPLIT_ALIASES = {"validation": ("validation", "val", "dev", "valid"), "train": ("train",), "test": ("test",)}


def hub_rows(hub_id: str, config: str | None, split: str) -> list[dict]:
    from datasets import load_dataset

    return list(load_dataset(hub_id, config, split=split))


def _check(rows: list, where: str, required: Iterable[str]) -> list[dict]:
    required = tuple(required)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: record {i}: expected a JSON object, got {type(row).__name__}")
        missing = [k for k in required if k not in row]
        if missing:
            raise ValueError(f"{where}: record {i}: missing field(s) {', '.join(missing)}")
    return rows


def read_file(path: Path, required: Iterable[str] = ()) -> list[dict]:
    if path.suffix == ".jsonl":
        return list(read_jsonl(path, "error", required=required))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return _check(pq.read_table(path).to_pylist(), str(path), required)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    return _check(data if isinstance(data, list) else [data], str(path), required)


def split_files(folder: Path, split: str) -> list[Path]:
    """The files of `split` in a folder (several for a sharded Hub snapshot), or its sub-folder's files."""
    names = SPLIT_ALIASES.get(split, (split,))
    for name in names:
        sub = folder / name
        if sub.is_dir():
            return sorted(p for p in sub.rglob("*") if p.suffix in SUFFIXES)

    def matches(p: Path) -> bool:
        stem = p.stem.lower()
        return any(stem == n or stem.endswith(("-" + n, "_" + n)) or stem.startswith(n + "-0") for n in names)

    return sorted(p for p in folder.rglob("*") if p.suffix in SUFFIXES and p.is_file() and matches(p))


def local_rows(path: str | Path, split: str, required: Iterable[str] = ()) -> list[dict]:
    """Rows of `split` from a file (the file itself, whatever the split) or a folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        return read_file(path, required)
    files = split_files(path, split)
    if not files:
        raise FileNotFoundError(f"{path}: no file for split {split!r} (expected e.g. {split}.jsonl)")
    return [row for f in files for row in read_file(f, required)]


def rows(split: str, path: str | Path | None, hub: tuple[str, str | None], required: Iterable[str] = ()) -> list[dict]:
    return local_rows(path, split, required) if path else hub_rows(hub[0], hub[1], split)
