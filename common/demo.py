"""`make demo`: RATIONALYST end to end, offline on the embedded models, on 2 CPU cores.

`make demo` builds the corpus with `python -m common.demo corpus`, runs the whole chain with
`slurm/pipeline.sh all --local` and the demo recipes (configs/demo), then prints the tables with
`python -m common.demo report`:
  prefilter  a small mixed corpus (public-domain prose shipped in reasoning-gym + GSM8K-style
             worked problems from its gsm_symbolic generator) against a gsm_symbolic centroid
  extract    SmolLM2 in `per_step` mode (a 135M model cannot copy a whole document in the
             <BOT>/<EOT> format) on the kept web documents and on gsm_symbolic problems
  parse, score (SmolLM2), filter
  finetune   LoRA on SmolLM2 with the kept rationales (briefly: this shows the mechanics)
  inference  GSM8K-style problems, `rationalyst` (the new model writes rationales, SmolLM2 proposes
             and scores steps) and `random`, then `evaluate` writes the accuracy table
  REFINER    the MWP chain with the demo recipes (configs/demo/refiner_*.yaml), prediction on the
             first DEMO_REFINER_LIMIT SVAMP problems with the trained critic and with the oracle
Rerunning resumes. Outputs go to outputs/demo/.

    python -m common.demo corpus outputs/demo/corpus.jsonl
    python -m common.demo report outputs/demo [outputs/demo/refiner-mwp]
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

N_PROSE, N_PROBLEMS = 24, 12
# (table row, output directory under the run directory)
DATA_STAGES = [
    ("prefilter", "prefilter"),
    ("extract (web)", "extract_web"),
    ("extract (datasets)", "extract_datasets"),
    ("parse", "parsed"),
    ("score", "scored"),
    ("filter", "filtered"),
]


def corpus_texts(n_prose: int = N_PROSE, n_problems: int = N_PROBLEMS) -> list[str]:
    """Public-domain prose (Jules Verne, shipped in reasoning-gym) and GSM8K-style worked problems."""
    from common.tasks.rationalyst import gsm_symbolic

    verne = (
        Path(importlib.util.find_spec("reasoning_gym").submodule_search_locations[0]) / "data" / "in_the_year_2889.txt"
    )
    prose = [" ".join(p.split()) for p in re.split(r"\n\s*\n", verne.read_text()) if 200 < len(p) < 1200]
    # problems neither mined (train) nor answered (test): the prefilter must find them among the prose
    problems = [gsm_symbolic.reference_text(x) for x in gsm_symbolic.load("validation", limit=n_problems)]
    return prose[:n_prose] + problems


def build_corpus(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for text in corpus_texts():
            fh.write(json.dumps({"text": text}) + "\n")


def report(run_dir: Path) -> str:
    """The data chain's counts table, the highest-gain rationales, then the evaluation table."""
    if not (run_dir / "prefilter" / "manifest.json").exists():
        return f"RATIONALYST: no outputs in {run_dir} (not run)"
    lines = [
        f"RATIONALYST data chain ({run_dir})",
        f"| {'stage':18} | {'in':>4} | {'out':>5} | {'s':>5} | notes",
        f"|{'-' * 20}|{'-' * 6}|{'-' * 7}|{'-' * 7}|------",
    ]
    for stage, d in DATA_STAGES:
        manifest = json.loads((run_dir / d / "manifest.json").read_text())
        c = manifest["counts"]
        out = c.get("out", c.get("kept"))
        notes = {
            "prefilter": f"below threshold {c.get('below_threshold', 0)}, too long {c.get('too_long', 0)}",
            "parse": f"unfaithful docs {c.get('docs_unfaithful', 0)}, malformed {c.get('triples_malformed', 0)}, "
            f"empty {c.get('triples_empty', 0)}",
            "filter": f"kept (gain >= tau): train {c.get('train', 0)}, dev {c.get('dev', 0)}",
        }.get(stage, "")
        lines.append(f"| {stage:18} | {c['in']:>4} | {out:>5} | {manifest.get('wall_seconds', 0):>5.0f} | {notes}")
    train = sorted((run_dir / "filtered" / "train").glob("part-*.jsonl"))
    rows = [json.loads(line) for p in train for line in p.read_text().splitlines()]
    lines.append("\nhighest-gain rationales:")
    for r in sorted(rows, key=lambda r: -r["gain"])[:3]:
        lines.append(f"  gain {r['gain']:+6.2f}  <BOT>{r['rationale'][:70]}<EOT>  ->  {r['following'][:50]}")
    metrics = run_dir / "rationalyst_model" / "metrics.json"
    if metrics.exists():
        m = json.loads(metrics.read_text())
        dev = [round(h["eval_loss"], 3) for h in m.get("dev_loss", [])]
        lines.append(f"\nrationale model: {m['train_examples']} examples, {m['steps']} steps, dev loss by epoch {dev}")
    evaluation = run_dir / "report" / "report.md"
    if evaluation.exists():
        lines += ["", f"evaluation ({evaluation})", evaluation.read_text()]
    verification = run_dir / "verify" / "report" / "report.md"
    if verification.exists():
        lines += [
            "",
            f"step verification ({verification}): pairwise = the gold step scored above its corrupted copy",
            verification.read_text(),
        ]
    return "\n".join(lines)


def refiner_report(refiner_dir: Path) -> str:
    """REFINER's per-turn metrics for each critic (refiner_predict's metrics.json)."""
    from common.report import format_table

    lines = []
    for metrics in sorted(refiner_dir.glob("predict-*/metrics.json")):
        m = json.loads(metrics.read_text())
        lines += [f"REFINER {m['task']}, critic {m['critic']} ({metrics.parent})", format_table(m["turns"]), ""]
    if lines and "REFINER mwp" in lines[0]:
        lines.append(
            "paper, SVAMP equation EM (refiner.md 8.1; UQA-T5-base trained on a GPU): turn 0 34.1, "
            "trained critic 47.2, oracle (T = 3) 66.0"
        )
    return "\n".join(lines) if lines else f"REFINER: no predictions in {refiner_dir} (not run)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "corpus":
        path = Path(argv[1])
        if not path.exists():
            build_corpus(path)
        return 0
    if len(argv) in (2, 3) and argv[0] == "report":
        print(report(Path(argv[1])))
        if len(argv) == 3:
            print(refiner_report(Path(argv[2])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
