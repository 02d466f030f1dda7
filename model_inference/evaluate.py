"""Accuracy per data set and heuristic, with 95% bootstrap intervals, and paired comparisons.

Reads inference output directories (records with "id", "correct" (or, with --metric correct_strict,
the strict extraction's "correct_strict"), "heuristic"; the data set comes from each run's manifest)
and writes:
  report.md     accuracy table (n, accuracy, 95% bootstrap CI) and, for each pair of heuristics on
                the same data set, the paired difference on their common questions: paired-bootstrap
                95% CI and McNemar's exact test (two-sided binomial on the discordant pairs)
  accuracy.png  bar chart with the intervals
  results.json  the same numbers

Refused: a record whose metric is not a JSON boolean (the string "false" would count as right) or
whose id is already in the run (any shard), with file and line; two runs of the same heuristic on
the same data set (one would silently replace the other). Runs that share only part of their
questions are paired on the common ones; the others are counted under `unpaired`.

    python -m model_inference.evaluate --runs runs/inference/gsm8k-rationalyst,runs/inference/gsm8k-random \\
        --output runs/report
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.artifacts import BadRecordError, ReadStats, input_files, read_jsonl, write_json_atomic
from common.config import option, parse_config
from common.stats import bootstrap_ci, mcnemar_exact


@dataclass
class EvaluateConfig:
    """Evaluate inference runs."""

    runs: list[str] = option([], "inference output directories (comma-separated)")
    output: str = option("", "directory for report.md, accuracy.png, results.json")
    bootstrap: int = option(10000, "bootstrap resamples")
    seed: int = option(0, "bootstrap seed")
    metric: str = option("correct", "the record field scored: correct (flexible answer extraction) or correct_strict")
    baseline: str = option(
        "random", "the heuristic the headline rows compare against (random: the paper's no supervision)"
    )


def paired(a: dict[str, bool], b: dict[str, bool], n_boot: int, rng: np.random.Generator) -> dict:
    """The paired difference on the questions both runs answered (a question one run lacks is left out
    of the pairing and counted under `unpaired`): the mean of a - b, a bootstrap over the common
    questions (each resample keeps both answers of a question together), McNemar's exact test."""
    common = sorted(set(a) & set(b))
    x = np.array([a[i] for i in common], dtype=float)
    y = np.array([b[i] for i in common], dtype=float)
    diff = x - y
    lo, hi = bootstrap_ci(diff, n_boot, rng) if len(common) else (float("nan"), float("nan"))
    only_a, only_b = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
    return {
        "n": len(common),
        "difference": float(diff.mean()) if len(common) else float("nan"),
        "ci95": [lo, hi],
        "first_only": only_a,
        "second_only": only_b,
        "mcnemar_p": mcnemar_exact(only_a, only_b),
        "unpaired": {"first": len(set(a) - set(b)), "second": len(set(b) - set(a))},
    }


def load_run(path: str, metric: str = "correct") -> tuple[str, str, dict[str, bool]]:
    """(data set, heuristic, {id: correct}) of one inference run. Each record's metric must be a JSON
    boolean (the string "false" is not a wrong answer counted as right) and each id must appear once
    in the run (across its shards); a bad record is an error naming file and line."""
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    dataset = manifest["config"].get("dataset", "?").split("=")[0]
    correct: dict[str, bool] = {}
    where: dict[str, str] = {}
    heuristics: set[str] = set()
    for f in input_files(path):
        stats = ReadStats()
        for r in read_jsonl(f, required=("id", metric, "heuristic"), stats=stats):
            at = stats.location
            if not isinstance(r[metric], bool):
                raise BadRecordError(f"{at}: {metric!r} must be true or false, got {r[metric]!r}")
            if isinstance(r["id"], bool) or not isinstance(r["id"], (str, int)):
                raise BadRecordError(f"{at}: 'id' must be a string or an integer, got {r['id']!r}")
            if not isinstance(r["heuristic"], str):
                raise BadRecordError(f"{at}: 'heuristic' must be a string, got {r['heuristic']!r}")
            key = str(r["id"])
            if key in correct:
                raise BadRecordError(f"{at}: duplicate id {key!r} (first at {where[key]})")
            correct[key], where[key] = r[metric], at
            heuristics.add(r["heuristic"])
    if len(heuristics) != 1:
        raise ValueError(f"{path}: expected one heuristic per run, found {sorted(heuristics)}")
    return dataset, heuristics.pop(), correct


def evaluate(runs: list[str], n_boot: int, seed: int, metric: str = "correct", baseline: str = "random") -> dict:
    rng = np.random.default_rng(seed)
    table = {}
    for path in runs:
        dataset, heuristic, correct = load_run(path, metric)
        if (dataset, heuristic) in table:
            raise ValueError(
                f"{table[(dataset, heuristic)]['run']} and {path} are both {heuristic} on {dataset}: "
                "give one run per data set and heuristic (evaluate the others separately)"
            )
        x = np.array(list(correct.values()), dtype=float)
        lo, hi = bootstrap_ci(x, n_boot, rng)
        table[(dataset, heuristic)] = {
            "dataset": dataset,
            "heuristic": heuristic,
            "run": path,
            "n": len(x),
            "accuracy": float(x.mean()) if len(x) else float("nan"),
            "ci95": [lo, hi],
            "correct": correct,
        }
    comparisons = []
    for (d1, h1), (d2, h2) in itertools.combinations(sorted(table), 2):
        if d1 == d2:
            comparisons.append(
                {
                    "dataset": d1,
                    "first": h1,
                    "second": h2,
                    **paired(table[(d1, h1)]["correct"], table[(d2, h2)]["correct"], n_boot, rng),
                }
            )
    return {
        "metric": metric,
        "accuracy": [{k: v for k, v in row.items() if k != "correct"} for row in table.values()],
        "comparisons": comparisons,
        "headline": headline(table, baseline, n_boot, rng),
    }


def headline(table: dict, baseline: str, n_boot: int, rng: np.random.Generator) -> list[dict]:
    """The paper's headline rows (rationalyst.md 9: +3.9 points on average over the seven benchmarks): each
    heuristic's mean accuracy over the data sets it shares with `baseline`, the difference of the means, and
    a paired interval over all their questions (questions resampled within each data set, the mean of the
    per-data-set differences recomputed per resample; p from the share of resamples on the other side of 0)."""
    rows = []
    for h in sorted({h for _, h in table} - {baseline}):
        sets = sorted(d for d, hh in table if hh == h and (d, baseline) in table)
        if not sets:
            continue
        diffs, acc_h, acc_b = [], [], []
        for d in sets:
            a, b = table[(d, h)]["correct"], table[(d, baseline)]["correct"]
            common = sorted(set(a) & set(b))
            x = np.array([a[i] for i in common], dtype=float)
            y = np.array([b[i] for i in common], dtype=float)
            diffs.append(x - y)
            acc_h.append(x.mean() if len(x) else float("nan"))
            acc_b.append(y.mean() if len(y) else float("nan"))
        draws = np.mean([d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1) for d in diffs if len(d)], axis=0)
        diff = float(np.mean([d.mean() for d in diffs if len(d)]))
        rows.append(
            {
                "heuristic": h,
                "baseline": baseline,
                "datasets": sets,
                "n": int(sum(len(d) for d in diffs)),
                "mean_accuracy": float(np.mean(acc_h)),
                "baseline_mean_accuracy": float(np.mean(acc_b)),
                "difference": diff,
                "ci95": [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))],
                "p": float(min(1.0, 2 * min((draws <= 0).mean(), (draws >= 0).mean()))),
            }
        )
    return rows


def markdown(results: dict) -> str:
    lines = ["Strict answer extraction (correct_strict).", ""] if results.get("metric") == "correct_strict" else []
    lines += ["| data set | heuristic | n | accuracy | 95% CI |", "|---|---|---|---|---|"]
    for r in results["accuracy"]:
        lines.append(
            f"| {r['dataset']} | {r['heuristic']} | {r['n']} | {100 * r['accuracy']:.1f} | "
            f"[{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}] |"
        )
    if results["comparisons"]:
        lines += [
            "",
            "| data set | first − second | n paired | difference | 95% CI | only first | only second | McNemar p |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in results["comparisons"]:
            lines.append(
                f"| {c['dataset']} | {c['first']} − {c['second']} | {c['n']} | {100 * c['difference']:+.1f} | "
                f"[{100 * c['ci95'][0]:+.1f}, {100 * c['ci95'][1]:+.1f}] | {c['first_only']} | "
                f"{c['second_only']} | {c['mcnemar_p']:.3g} |"
            )
        for c in results["comparisons"]:
            if c["unpaired"]["first"] or c["unpaired"]["second"]:
                lines.append(
                    f"\n{c['dataset']}, {c['first']} − {c['second']}: {c['unpaired']['first']} question(s) only in "
                    f"{c['first']}'s run and {c['unpaired']['second']} only in {c['second']}'s are not paired."
                )
    if results.get("headline"):
        lines += [
            "",
            "Mean over data sets (each heuristic against the baseline on the same questions):",
            "",
            "| heuristic | data sets | questions | mean accuracy | baseline mean | difference | 95% CI | p |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for h in results["headline"]:
            lines.append(
                f"| {h['heuristic']} − {h['baseline']} | {len(h['datasets'])} | {h['n']} | "
                f"{100 * h['mean_accuracy']:.1f} | {100 * h['baseline_mean_accuracy']:.1f} | "
                f"{100 * h['difference']:+.1f} | [{100 * h['ci95'][0]:+.1f}, {100 * h['ci95'][1]:+.1f}] | "
                f"{h['p']:.3g} |"
            )
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["accuracy"]
    labels = [f"{r['dataset']}\n{r['heuristic']}" for r in rows]
    acc = [100 * r["accuracy"] for r in rows]
    err = [[100 * (r["accuracy"] - r["ci95"][0]) for r in rows], [100 * (r["ci95"][1] - r["accuracy"]) for r in rows]]
    fig, ax = plt.subplots(figsize=(max(4, 1.4 * len(rows)), 3.5))
    ax.bar(range(len(rows)), acc, yerr=err, capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("accuracy with 95% bootstrap intervals")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(EvaluateConfig, argv, __doc__)
    if not cfg.runs or not cfg.output:
        raise SystemExit("--runs and --output are required")
    if cfg.metric not in ("correct", "correct_strict"):
        raise SystemExit("--metric must be correct or correct_strict")
    results = evaluate(cfg.runs, cfg.bootstrap, cfg.seed, cfg.metric, cfg.baseline)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    (out / "report.md").write_text(text)
    write_json_atomic(out / "results.json", results)
    plot(results, out / "accuracy.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
