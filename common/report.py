"""Plain-text tables for stage logs and the demo report."""

from __future__ import annotations

import math


def format_table(rows: list[dict]) -> str:
    """A fixed-width table of per-turn metrics: one row per dict, its "turn" first, then the other keys."""
    keys = [k for k in rows[0] if k not in ("turn",)]
    lines = ["turn  " + "  ".join(f"{k:>14}" for k in keys)]
    for r in rows:
        lines.append(f"{r['turn']:>4}  " + "  ".join(f"{_fmt(r[k]):>14}" for k in keys))
    return "\n".join(lines)


def _fmt(v) -> str:
    return "-" if isinstance(v, float) and math.isnan(v) else f"{v:.2f}" if isinstance(v, float) else str(v)
