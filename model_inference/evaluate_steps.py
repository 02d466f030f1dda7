"""The step scorers' report: verify_steps runs in, one table per data set out (common.step_metrics).

For each data set and scorer: step AUROC, ProcessBench F1 and PRMBench's per-class step F1 (thresholds
chosen on a dev split of the questions, `--dev-fraction`, reported on the rest), pairwise accuracy on
perturbed sets, and best-of-N accuracy (min / last / mean / product of the step scores) beside random
choice, majority vote and the oracle (any correct). 95% bootstrap intervals everywhere; a paired bootstrap
between scorers on the same solutions (every scorer against random, position and length, and rationalyst
against likelihood). Writes report.md, results.json and steps.png.

    python -m model_inference.evaluate_steps --runs runs/verify/prmbench-likelihood,runs/verify/prmbench-random \\
        --output runs/verify/report
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common import step_metrics as sm
from common.artifacts import read_records, write_json_atomic
from common.config import option, parse_config
from common.stats import bootstrap_metric, paired_bootstrap

BASELINES = ("random", "position", "length")


@dataclass
class EvaluateStepsConfig:
    """Report the step scorers' metrics."""

    runs: list[str] = option([], "verify_steps output directories (comma-separated)")
    output: str = option("", "directory for report.md, results.json, steps.png")
    dev_fraction: float = option(0.2, "share of the questions the thresholds are chosen on")
    bootstrap: int = option(1000, "bootstrap resamples")
    seed: int = option(0, "split and bootstrap seed")


def load_runs(paths: list[str]) -> dict[str, dict[str, list[dict]]]:
    """{data set: {scorer: solutions}}; one scorer per run, a scorer at most once per data set."""
    runs: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for path in paths:
        rows = list(read_records(path, required=("id", "scores", "scorer", "data", "steps")))
        kinds = {(r["data"], r["scorer"]) for r in rows}
        if len(kinds) != 1:
            raise ValueError(f"{path}: expected one data set and one scorer per run, found {sorted(kinds)}")
        (data, scorer) = kinds.pop()
        if scorer in runs[data]:
            raise ValueError(f"{path}: a second run of scorer {scorer!r} on {data!r}")
        for r in rows:
            if len(r["scores"]) != len(r["steps"]):
                raise ValueError(f"{path}: {r['id']}: {len(r['scores'])} scores for {len(r['steps'])} steps")
        runs[data][scorer] = sorted(rows, key=lambda r: r["id"])
    return runs


def _cell(value: float, ci: list[float] | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and not math.isnan(ci[0]) else "")


def evaluate_data(scorers: dict[str, list[dict]], cfg: EvaluateStepsConfig) -> dict:
    rng = np.random.default_rng(cfg.seed)
    rows, tests = {}, []
    labelled = any(s["labels"] is not None for sols in scorers.values() for s in sols)
    for name, sols in scorers.items():
        dev, test = sm.split_dev(sols, cfg.dev_fraction, cfg.seed)
        row: dict = {"n_solutions": len(sols), "n_test": len(test)}
        if labelled:
            row["auroc"] = bootstrap_metric(test, sm.step_auroc, cfg.bootstrap, rng)
            t_pb = sm.best_threshold(dev, sm.processbench_f1)
            t_step = sm.best_threshold(dev, lambda s, t: sm.step_f1(s, t)["f1_mean"])
            row["thresholds"] = {"processbench_f1": t_pb, "step_f1": t_step}
            row["processbench_f1"] = bootstrap_metric(
                test, lambda s, t=t_pb: sm.processbench_f1(s, t), cfg.bootstrap, rng
            )
            row["step_f1"] = sm.step_f1(test, t_step)
            row["step_f1_mean"] = bootstrap_metric(
                test, lambda s, t=t_step: sm.step_f1(s, t)["f1_mean"], cfg.bootstrap, rng
            )
            pair_scores = sm.pairs(sols)
            if pair_scores:
                row["pairwise"] = bootstrap_metric(pair_scores, sm.pairwise_accuracy, cfg.bootstrap, rng)
        groups = sm.questions(sols)
        if groups and not labelled:
            row["best_of_n"] = {
                how: bootstrap_metric(groups, lambda g, h=how: sm.best_of_n(g, h), cfg.bootstrap, rng)
                for how in sm.AGGREGATIONS
            }
            row["best_of_n_baselines"] = {
                "random choice": sm.random_choice(groups),
                "majority vote": sm.majority_vote(groups),
                "oracle (any correct)": sm.any_correct(groups),
            }
        rows[name] = row
    # paired comparisons on the same solutions
    pairs_to_test = [
        (a, b)
        for a, b in itertools.permutations(scorers, 2)
        if (b in BASELINES and a not in BASELINES and a != "oracle") or (a, b) == ("rationalyst", "likelihood")
    ]
    for a, b in pairs_to_test:
        ids = {s["id"] for s in scorers[a]} & {s["id"] for s in scorers[b]}
        sa = [s for s in scorers[a] if s["id"] in ids]  # both sorted by id (load_runs): aligned
        sb = [s for s in scorers[b] if s["id"] in ids]
        entry = {"first": a, "second": b, "n_solutions": len(ids)}
        if labelled:
            _, ta = sm.split_dev(sa, cfg.dev_fraction, cfg.seed)
            _, tb = sm.split_dev(sb, cfg.dev_fraction, cfg.seed)
            entry["auroc"] = paired_bootstrap(ta, tb, sm.step_auroc, cfg.bootstrap, rng)
            pa, pb = sm.pairs(sa), sm.pairs(sb)
            if pa and len(pa) == len(pb):
                entry["pairwise"] = paired_bootstrap(pa, pb, sm.pairwise_accuracy, cfg.bootstrap, rng)
        else:
            ga, gb = sm.questions(sa), sm.questions(sb)
            if ga and len(ga) == len(gb):
                entry["best_of_n_min"] = paired_bootstrap(ga, gb, lambda g: sm.best_of_n(g, "min"), cfg.bootstrap, rng)
        tests.append(entry)
    return {"scorers": rows, "paired": tests, "labelled": labelled}


def _pvalue(d: dict) -> str:
    return f"<{d['p_floor']:.2g}" if d["p"] == 0 and "p_floor" in d else f"{d['p']:.3g}"


def markdown(results: dict) -> str:
    lines = []
    for data, res in results.items():
        lines += [f"## {data}", ""]
        if res["labelled"]:
            lines += [
                "| scorer | solutions (test) | step AUROC | ProcessBench F1 | step F1 correct / erroneous / mean "
                "| pairwise |",
                "|---|---|---|---|---|---|",
            ]
            for name, r in res["scorers"].items():
                f = r["step_f1"]
                lines.append(
                    f"| {name} | {r['n_solutions']} ({r['n_test']}) | {_cell(*r['auroc'])} | "
                    f"{_cell(*r['processbench_f1'])} | {_cell(f['f1_correct'])} / {_cell(f['f1_erroneous'])} / "
                    f"{_cell(*r['step_f1_mean'])} | {_cell(*r['pairwise']) if 'pairwise' in r else '-'} |"
                )
        else:
            lines += [
                "| scorer | " + " | ".join(f"best-of-N ({h})" for h in sm.AGGREGATIONS) + " |",
                "|---|" + "---|" * len(sm.AGGREGATIONS),
            ]
            first = None
            for name, r in res["scorers"].items():
                if "best_of_n" in r:
                    first = first or r
                    lines.append(f"| {name} | " + " | ".join(_cell(*r["best_of_n"][h]) for h in sm.AGGREGATIONS) + " |")
            if first:
                lines.append("")
                lines += [f"- {k}: {_cell(v)}" for k, v in first["best_of_n_baselines"].items()]
        if res["paired"]:
            lines += [
                "",
                "| first - second | solutions | metric | difference | 95% CI | p |",
                "|---|---|---|---|---|---|",
            ]
            for t in res["paired"]:
                for metric in ("auroc", "pairwise", "best_of_n_min"):
                    if metric in t:
                        d = t[metric]
                        lines.append(
                            f"| {t['first']} - {t['second']} | {t['n_solutions']} | {metric} | "
                            f"{d['difference']:+.3f} | [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] | "
                            f"{_pvalue(d)} |"
                        )
        lines.append("")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(d, r) for d, r in results.items() if r["labelled"]]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4, 3.2 * len(panels)), 3.2), squeeze=False)
    for ax, (data, res) in zip(axes[0], panels):
        names = list(res["scorers"])
        vals = [res["scorers"][n]["auroc"][0] for n in names]
        lo = [v - res["scorers"][n]["auroc"][1][0] for v, n in zip(vals, names)]
        hi = [res["scorers"][n]["auroc"][1][1] - v for v, n in zip(vals, names)]
        ax.bar(range(len(names)), vals, yerr=[lo, hi], capsize=3, color="#4c72b0")
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"{data}: step AUROC", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(EvaluateStepsConfig, argv, __doc__)
    if not cfg.runs or not cfg.output:
        raise SystemExit("--runs and --output are required")
    try:
        runs = load_runs(cfg.runs)
    except ValueError as exc:
        raise SystemExit(f"evaluate_steps: {exc}") from None
    results = {data: evaluate_data(scorers, cfg) for data, scorers in runs.items()}
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    (out / "report.md").write_text(text)
    write_json_atomic(out / "results.json", results)
    plot(results, out / "steps.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
