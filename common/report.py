"""Plain-text tables for stage logs and the demo report."""

from __future__ import annotations

import math


def format_table(rows: list[dict]) -> str:
    """A fixed-width table: one row per dict, its first key (e.g. "turn") as the row label, then the others."""
    if not rows:
        return "(no rows)"
    label, *keys = list(rows[0])
    width = max(len(label), *(len(str(r[label])) for r in rows))
    lines = [f"{label:>{width}}  " + "  ".join(f"{k:>14}" for k in keys)]
    for r in rows:
        lines.append(f"{str(r[label]):>{width}}  " + "  ".join(f"{_fmt(r[k]):>14}" for k in keys))
    return "\n".join(lines)


def _fmt(v) -> str:
    return "-" if isinstance(v, float) and math.isnan(v) else f"{v:.2f}" if isinstance(v, float) else str(v)
