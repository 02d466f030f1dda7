"""Throughput of the score_rationales stage vs the reference's method (two full forwards per triple).

Same triples, same model, one process. The stage scores "with" and "without" the rationale as
two branches after one shared frame + preceding text; the naive method runs both sequences
in full. Prints both throughputs, their ratio and the token-count bound: tokens the naive
method runs / tokens the stage runs. Preceding text >= 6x rationale + following gives ~1.8x.

    python bench/score_rationales.py
"""

from __future__ import annotations

import argparse

from benchlib import report, time_interleaved, token_source

from common.llm.hf import HFBackend
from common.rationales import branches_for
from sampling.score_rationales import score_triples


def make_triples(tok, n: int, preceding: int, rationale: int, following: int) -> list[dict]:
    ids = token_source(tok, n * (preceding + rationale + following))
    triples, pos = [], 0
    for i in range(n):
        parts = []
        for size in (preceding, rationale, following):
            parts.append(tok.decode(ids[pos : pos + size]).strip())
            pos += size
        triples.append({"id": f"t{i}", "preceding": parts[0], "rationale": parts[1], "following": parts[2]})
    return triples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--triples", type=int, default=16)
    ap.add_argument("--preceding-tokens", type=int, default=384)
    ap.add_argument("--rationale-tokens", type=int, default=32)
    ap.add_argument("--following-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    llm = HFBackend(args.model, device=args.device)
    triples = make_triples(llm.tok, args.triples, args.preceding_tokens, args.rationale_tokens, args.following_tokens)
    naive_tokens = shared_tokens = 0
    for req in branches_for(llm.render_chat, triples):
        p = len(llm.encode_prompt(req.prefix))
        rows = [len(llm.encode_text(m)) + len(llm.encode_text(c)) for m, c in req.branches]
        naive_tokens += sum(p + r for r in rows)
        shared_tokens += p + sum(rows)
    score_triples(llm, triples[:2])  # warm-up

    def run(reuse: bool) -> None:
        llm.prefix_reuse = reuse
        score_triples(llm, triples)

    t = time_interleaved({"stage": lambda: run(True), "naive": lambda: run(False)}, args.repeats)
    print(
        f"model {args.model} on {llm.device}; {args.triples} triples; preceding ~{args.preceding_tokens} "
        f"tokens, rationale ~{args.rationale_tokens}, following ~{args.following_tokens} (plus the chat frame)"
    )
    report(
        "triples",
        len(triples),
        t["stage"],
        t["naive"],
        naive_tokens,
        shared_tokens,
        fast_name="stage",
        naive_name="2 full fwd",
    )


if __name__ == "__main__":
    main()
