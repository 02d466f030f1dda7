"""`make demo`: RATIONALYST end to end, offline on the embedded models, on 2 CPU cores.

  prefilter  a small mixed corpus (public-domain prose shipped in reasoning-gym + GSM8K-style
             worked problems from its gsm_symbolic generator) against a gsm_symbolic centroid
  extract    SmolLM2 in `per_step` mode (a 135M model cannot copy a whole document in the
             <BOT>/<EOT> format) on the kept web documents and on gsm_symbolic problems
  parse, score (SmolLM2), filter
  finetune   LoRA on SmolLM2 with the kept rationales (briefly: this shows the mechanics)
  inference  GSM8K-style problems, `rationalyst` (the new model writes rationales, SmolLM2 proposes
             and scores steps) and `random`, then `evaluate` prints the accuracy table
Each stage runs as its own command line, exactly as a user would type it; rerunning resumes.
Outputs go to outputs/demo/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("outputs/demo")
N_PROSE, N_PROBLEMS = 24, 12
# GSM8K-style problems for the inference demo: about 30 s per problem and step on 2 cores for
# `rationalyst` (3 candidates, a rationale and scoring per step); DEMO_EVAL_PROBLEMS=36 for a few dozen.
N_EVAL = int(os.environ.get("DEMO_EVAL_PROBLEMS", "8"))


def build_corpus(path: Path) -> None:
    import reasoning_gym
    verne = (Path(importlib.util.find_spec("reasoning_gym").submodule_search_locations[0]) / "data"
             / "in_the_year_2889.txt")
    prose = [" ".join(p.split()) for p in re.split(r"\n\s*\n", verne.read_text()) if 200 < len(p) < 1200]
    problems = [x["question"] + "\n" + x["metadata"]["answer_cot"]
                for x in reasoning_gym.create_dataset("gsm_symbolic", size=N_PROBLEMS, seed=2024)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        for text in prose[:N_PROSE] + problems:
            fh.write(json.dumps({"text": text}) + "\n")


def run(module: str, *args: str) -> float:
    cmd = [sys.executable, "-m", module, *args]
    print("$ python -m " + " ".join([module, *map(shlex.quote, args)]), flush=True)
    started = time.time()
    subprocess.run(cmd, check=True)
    return time.time() - started


def counts(stage_dir: Path) -> dict:
    return json.loads((stage_dir / "manifest.json").read_text())["counts"]


def main() -> int:
    started = time.time()
    corpus = OUT / "corpus.jsonl"
    if not corpus.exists():
        build_corpus(corpus)
    llm = ["--device", "cpu"]
    seconds = {
        "prefilter": run("sampling.prefilter", "--input", str(corpus), "--output", str(OUT / "prefilter"),
                         "--reference-sets", "gsm_symbolic", "--reference-limit", "200", "--device", "cpu"),
        "extract (web)": run("sampling.extract_rationales", "--input", str(OUT / "prefilter"),
                             "--output", str(OUT / "extract_web"), "--mode", "per_step", "--max-steps", "4",
                             "--step-max-tokens", "32", *llm),
        "extract (datasets)": run("sampling.extract_rationales", "--datasets", "gsm_symbolic",
                                  "--limit-per-dataset", "6", "--output", str(OUT / "extract_datasets"),
                                  "--mode", "per_step", "--max-steps", "5", "--step-max-tokens", "32", *llm),
        "parse": run("sampling.parse_rationales", "--input", f"{OUT / 'extract_web'},{OUT / 'extract_datasets'}",
                     "--output", str(OUT / "parsed")),
        "score": run("sampling.score_rationales", "--input", str(OUT / "parsed"), "--output", str(OUT / "scored"),
                     *llm),
        "filter": run("sampling.filter_rationales", "--input", str(OUT / "scored"), "--output",
                      str(OUT / "filtered")),
    }
    dirs = {"prefilter": "prefilter", "extract (web)": "extract_web", "extract (datasets)": "extract_datasets",
            "parse": "parsed", "score": "scored", "filter": "filtered"}
    print("\nRATIONALYST data chain (outputs/demo)")
    print(f"| {'stage':18} | {'in':>4} | {'out':>5} | {'s':>5} | notes")
    print(f"|{'-' * 20}|{'-' * 6}|{'-' * 7}|{'-' * 7}|------")
    for stage, d in dirs.items():
        c = counts(OUT / d)
        out = c.get("out", c.get("kept"))
        notes = {
            "prefilter": f"below threshold {c.get('below_threshold', 0)}, too long {c.get('too_long', 0)}",
            "parse": f"unfaithful docs {c.get('docs_unfaithful', 0)}, malformed {c.get('triples_malformed', 0)}, "
                     f"empty {c.get('triples_empty', 0)}",
            "filter": f"kept (gain >= 0): train {c.get('train', 0)}, dev {c.get('dev', 0)}",
        }.get(stage, "")
        print(f"| {stage:18} | {c['in']:>4} | {out:>5} | {seconds[stage]:>5.0f} | {notes}")
    train = OUT / "filtered" / "train" / "part-00000-of-00001.jsonl"
    best = sorted((json.loads(l) for l in train.read_text().splitlines()), key=lambda r: -r["gain"])[:3]
    print("\nhighest-gain rationales:")
    for r in best:
        print(f"  gain {r['gain']:+6.2f}  <BOT>{r['rationale'][:70]}<EOT>  ->  {r['following'][:50]}")

    print("\n== the rationale model: LoRA fine-tune, then stepwise inference")
    run("training.finetune", "--train", str(OUT / "filtered" / "train"), "--dev", str(OUT / "filtered" / "dev"),
        "--output", str(OUT / "rationalyst_model"), "--lora", "true", "--lr", "2e-4", "--epochs", "2",
        "--batch-size", "4", "--grad-accum", "1", "--max-length", "384")
    common = ["--dataset", "gsm_symbolic", "--limit", str(N_EVAL), "--device", "cpu", "--shots", "2", "--max-steps", "4",
              "--step-max-tokens", "48", "--rationale-max-tokens", "32", "--batch-size", "4"]
    for heuristic in ("rationalyst", "random"):
        run("model_inference.inference", *common, "--heuristic", heuristic, "--rationale-model",
            str(OUT / "rationalyst_model" / "final"), "--output", str(OUT / f"inference_{heuristic}"))
    run("model_inference.evaluate", "--runs", f"{OUT / 'inference_rationalyst'},{OUT / 'inference_random'}",
        "--output", str(OUT / "report"))
    print(f"\ndemo finished in {time.time() - started:.0f}s (report: {OUT / 'report'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
