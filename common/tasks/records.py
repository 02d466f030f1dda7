"""Task files in their original formats (a JSON array, JSON lines or CSV with a header), read record by
record so that a malformed record is reported as `file:line: what is wrong` (the stage contract), or
skipped and counted."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.artifacts import BadRecordError, ReadStats


def _json_array(text: str, path: Path) -> list[tuple[int, Any]]:
    """(line, value) for each element of a top-level JSON array."""
    decoder, out = json.JSONDecoder(), []
    i = len(text) - len(text.lstrip())
    line, counted = 1, 0  # line of position `counted`, advanced incrementally
    if not text.startswith("[", i):
        raise BadRecordError(f"{path}:1: expected a JSON array of records")
    i += 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text):
            raise BadRecordError(f"{path}:{text.count(chr(10)) + 1}: the JSON array is not closed")
        if text[i] == "]":
            return out
        line, counted = line + text.count("\n", counted, i), i
        try:
            value, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise BadRecordError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        out.append((line, value))


def load_records(
    path: str | Path,
    build: Callable[[dict, int], dict],
    required: tuple[str, ...] = (),
    on_bad_record: str = "error",
    stats: ReadStats | None = None,
) -> list[dict]:
    """build(record, index) for every record of `path`; a record that is not an object, lacks a required
    field, or that build rejects (KeyError/ValueError/TypeError) errors with file:line, or is skipped."""
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = [(reader.line_num, row) for row in reader]
    elif path.suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((lineno, json.loads(line)))
                except json.JSONDecodeError as exc:
                    rows.append((lineno, exc))
    else:
        rows = _json_array(text, path)
    out = []
    for index, (lineno, record) in enumerate(rows):
        try:
            if isinstance(record, json.JSONDecodeError):
                raise ValueError(f"invalid JSON ({record.msg} at column {record.colno})")
            if not isinstance(record, dict):
                raise ValueError(f"expected a JSON object, got {type(record).__name__}")
            missing = [k for k in required if k not in record]
            if missing:
                raise ValueError(f"missing field(s) {', '.join(missing)}")
            out.append(build(record, index))
            stats.read += 1
        except (KeyError, ValueError, TypeError) as exc:
            where = f"{path}:{lineno}: {exc}"
            if on_bad_record != "skip":
                raise BadRecordError(where + " (use --on-bad-record skip to skip such records)") from None
            stats.bad += 1
            if len(stats.bad_examples) < 5:
                stats.bad_examples.append(where)
    return out
