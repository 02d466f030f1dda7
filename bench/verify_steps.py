"""Step verification: every step of a solution scored given the steps before it, in one forward pass per
solution (the steps' frames nest, common.llm.hf) against one full forward per step, same solutions, one run.
Prints steps per second both ways, the ratio and the token-count bound (tokens the per-step method runs /
tokens the one-pass method runs), then a compute bound: both methods project the same scored tokens onto
the vocabulary (49,152 x 576 for SmolLM2, a fifth of its weights), which no shared prefix saves, so the
bound on the ratio counts that work beside the body's (2 x parameters per token each).

    python bench/verify_steps.py [--data prmbench=../shared/data/prmbench/prmbench_subset400.jsonl] [--limit 24]
"""

from __future__ import annotations

import argparse

from benchlib import REPO, report, time_interleaved, token_counts

from common.llm.hf import HFBackend
from common.scorers import LikelihoodScorer, StepContext
from common.tasks import steps

PRMBENCH = REPO.parent / "shared" / "data" / "prmbench" / "prmbench_subset400.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = f"prmbench={PRMBENCH}" if PRMBENCH.exists() else "perturbed:gsm_symbolic"
    ap.add_argument("--data", default=default, help=f"solutions (default {default})")
    ap.add_argument("--limit", type=int, default=24, help="questions")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    backend = HFBackend(args.model, device="cpu")
    scorer = LikelihoodScorer(backend)
    requests = []
    for sol in steps.load(args.data, limit=args.limit):
        messages = [{"role": "user", "content": f"Question: {sol['question']}\nAnswer:"}]
        requests += [
            scorer.request(StepContext(sol["id"], messages, sol["steps"][:i]), None, [step])
            for i, step in enumerate(sol["steps"])
        ]
    naive_tokens, one_pass_tokens = token_counts(backend, requests)
    backend.score_branches(requests[:2])  # warm-up

    def score(reuse: bool) -> None:
        backend.prefix_reuse = reuse
        backend.score_branches(requests)

    t = time_interleaved({"one pass": lambda: score(True), "per step": lambda: score(False)}, args.repeats)
    print(f"{len(requests)} steps of {args.limit} questions from {args.data.split('=')[0]}, SmolLM2 on CPU")
    report(
        "steps",
        len(requests),
        t["one pass"],
        t["per step"],
        naive_tokens,
        one_pass_tokens,
        fast_name="one pass",
        naive_name="per-step fwd",
    )
    scored = sum(len(backend.encode_text(c)) for r in requests for _, c in r.branches)
    head = backend.model.get_output_embeddings().weight.numel()
    body = sum(p.numel() for p in backend.model.parameters()) - backend.model.get_input_embeddings().weight.numel()
    body -= 0 if backend.model.config.tie_word_embeddings else head
    compute = (naive_tokens * body + scored * head) / (one_pass_tokens * body + scored * head)
    ratio = t["per step"] / t["one pass"]
    print(
        f"compute bound : {compute:.2f}x  ({scored} scored tokens projected by both; body {body / 1e6:.0f}M, head {head / 1e6:.0f}M)"
    )
    print(f"ratio / compute bound: {ratio / compute:.0%}")


if __name__ == "__main__":
    main()
