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
    field, is not UTF-8, or that build raises on, errors with file:line, or is skipped."""
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    data = path.read_bytes()
    if path.suffix == ".jsonl":  # lines end at "\n" only: U+2028 is legal inside a JSON string
        rows = []
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            if raw.strip():
                try:
                    rows.append((lineno, json.loads(raw.decode("utf-8"))))
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    rows.append((lineno, exc))
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise BadRecordError(f"{path}:{line}: not UTF-8 ({exc.reason}); the file cannot be read") from None
        if path.suffix == ".csv":
            reader = csv.DictReader(io.StringIO(text, newline=""))
            rows = [(reader.line_num, row) for row in reader]
        else:
            rows = _json_array(text, path)
    out = []
    for index, (lineno, record) in enumerate(rows):
        try:
            if isinstance(record, json.JSONDecodeError):
                raise ValueError(f"invalid JSON ({record.msg} at column {record.colno})")
            if isinstance(record, UnicodeDecodeError):
                raise ValueError(f"not UTF-8 (byte {record.start + 1}: {record.reason})")
            if not isinstance(record, dict):
                raise ValueError(f"expected a JSON object, got {type(record).__name__}")
            missing = [k for k in required if k not in record]
            if missing:
                raise ValueError(f"missing field(s) {', '.join(missing)}")
            out.append(build(record, index))
            stats.read += 1
        except Exception as exc:  # a record that build cannot read, whatever the reason, is that record's fault
            reason = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            stats.reject(f"{path}:{lineno}: {reason}", on_bad_record, "records")
    return out
