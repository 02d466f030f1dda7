"""Candidate scoring at inference: shared prefixes (the few-shot chat, question and trajectory so far computed
once for the k candidates, and for the later rounds of the same question, whose trajectories extend it; the
rationale turn once per round) against one full forward per candidate.

The requests are rebuilt from a real inference run (`--run DIR`; by default a short
`rationalyst` run on offline GSM8K-style problems is made first, with SmolLM2 as agent, scorer
and rationale model). Same requests, one process; prints both throughputs, their ratio and the
token-count bound (tokens the naive method runs / tokens the shared-prefix method runs).

    python bench/step_scoring.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchlib import report, time_interleaved, token_counts

from common.config import make_config
from common.llm.hf import HFBackend
from common.scorers import LikelihoodScorer, StepContext
from model_inference import inference


def rebuild_requests(run: Path, scorer) -> list:
    manifest = json.loads((run / "manifest.json").read_text())
    cfg = make_config(
        inference.InferenceConfig,
        {k: v for k, v in manifest["config"].items() if k not in ("shard_index", "num_shards")},
    )
    _, questions, context_of = inference.load_questions(cfg)
    by_id = {q["id"]: q for q in questions}
    requests = []
    for line in (run / "part-00000-of-00001.jsonl").read_text().splitlines():
        rec = json.loads(line)
        messages = context_of(by_id[rec["id"]])
        ctx = StepContext(rec["id"], messages)
        for step in rec["steps"]:
            requests.append(LikelihoodScorer(scorer).request(ctx, step["rationale"] or "", step["candidates"]))
            ctx = StepContext(rec["id"], messages, [*ctx.steps, step["candidates"][step["chosen"]]])
    return requests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="an inference output directory (default: make a short run first)")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    run = Path(args.run) if args.run else Path(tempfile.mkdtemp(prefix="bench-steps-")) / "run"
    if not args.run:
        inference.main(
            [
                "--dataset",
                "gsm_symbolic",
                "--limit",
                "3",
                "--heuristic",
                "rationalyst",
                "--model",
                args.model,
                "--rationale-model",
                args.model,
                "--output",
                str(run),
                "--device",
                "cpu",
                "--shots",
                "3",
                "--max-steps",
                "4",
                "--step-max-tokens",
                "48",
                "--rationale-max-tokens",
                "32",
            ]
        )
    scorer = HFBackend(args.model, device="cpu")
    requests = rebuild_requests(run, scorer)
    n = sum(len(r.branches) for r in requests)
    naive_tokens, shared_tokens = token_counts(scorer, requests)
    scorer.score_branches(requests[:1])  # warm-up

    def score(reuse: bool) -> None:
        scorer.prefix_reuse = reuse
        scorer.score_branches(requests)

    t = time_interleaved({"shared": lambda: score(True), "naive": lambda: score(False)}, args.repeats)
    print(
        f"{len(requests)} scoring rounds from {run}, k = {n / len(requests):.1f} candidates each, "
        f"mean prefix {sum(len(scorer.encode_prompt(r.prefix)) for r in requests) / len(requests):.0f} tokens "
        "(the rationale turn is the branches' middle)"
    )
    report("candidates", n, t["shared"], t["naive"], naive_tokens, shared_tokens)


if __name__ == "__main__":
    main()
