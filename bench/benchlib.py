"""Helpers shared by the benchmarks: real English text, timing of two methods interleaved."""

from __future__ import annotations

import json
import statistics
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GSM8K = REPO.parent / "shared" / "data" / "gsm8k" / "train.jsonl"


def english_text() -> str:
    """GSM8K problems and solutions when the shared data is there, else Python's licence text."""
    if GSM8K.exists():
        rows = [json.loads(line) for line in GSM8K.read_text().splitlines()[:400]]
        return "\n\n".join(r["question"] + "\n" + r["answer"] for r in rows)
    return (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_text()


def token_source(tok, need: int) -> list[int]:
    ids = tok(english_text(), add_special_tokens=False).input_ids
    while len(ids) < need:
        ids = ids + ids
    return ids


def time_interleaved(methods: dict, repeats: int) -> dict[str, float]:
    """Median seconds per method; runs alternate so drift in machine load hits every method."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, run in methods.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def report(
    unit: str,
    n: int,
    fast: float,
    naive: float,
    naive_tokens: int,
    shared_tokens: int,
    fast_name: str = "shared prefix",
    naive_name: str = "full forwards",
) -> None:
    ratio, bound = naive / fast, naive_tokens / shared_tokens
    print(f"{fast_name:14}: {n / fast:8.2f} {unit}/s  ({fast:.2f} s)")
    print(f"{naive_name:14}: {n / naive:8.2f} {unit}/s  ({naive:.2f} s)")
    print(f"speed ratio   : {ratio:.2f}x")
    print(f"token bound   : {bound:.2f}x  ({naive_tokens} / {shared_tokens} tokens through the model)")
    print(f"ratio / bound : {ratio / bound:.0%}")


def token_counts(backend, requests) -> tuple[int, int]:
    """Tokens through the model: one full forward per branch, against the nested-prefix method (per group of
    nesting prefixes, one spine and the middle + continuation of each branch not on it)."""
    from common.llm.hf import _trunks

    items = [
        (backend.encode_prompt(r.prefix), backend.encode_text(m), backend.encode_text(c))
        for r in requests
        for m, c in r.branches
    ]
    naive = sum(len(p) + len(m) + len(c) for p, m, c in items)
    shared = 0
    for trunk, members in _trunks(list(range(len(items))), items):
        full = {i: items[i][0] + items[i][1] + items[i][2] for i in members}
        spine = max((full[i] for i in members if len(items[i][0]) == len(trunk)), key=len)
        shared += len(spine) + sum(
            len(items[i][1]) + len(items[i][2]) for i in members if full[i] != spine[: len(full[i])]
        )
    return naive, shared
