"""Scoring k continuations after one shared prefix: prefix reuse vs one full forward per continuation.

Same pairs, same backend, one process; prints both throughputs, their ratio, and the token-count
bound on that ratio: tokens the naive method runs through the model / tokens the shared-prefix
method runs (k(P+C) / (P+kC) per group; 2.5x at k=4, P=4C).

    python bench/score_prefix.py                       # SmolLM2 on CPU, k=4, P=256, C=64
    python bench/score_prefix.py --k 8 --prefix-tokens 512
"""

from __future__ import annotations

import argparse

from benchlib import report, time_interleaved, token_source

from common.llm.hf import HFBackend


def make_pairs(tok, groups: int, k: int, prefix_tokens: int, cont_tokens: int):
    ids = token_source(tok, groups * (prefix_tokens + k * cont_tokens))
    pairs, pos = [], 0
    for _ in range(groups):
        prefix = tok.decode(ids[pos : pos + prefix_tokens])
        pos += prefix_tokens
        for _ in range(k):
            pairs.append((prefix, tok.decode(ids[pos : pos + cont_tokens])))
            pos += cont_tokens
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--k", type=int, default=4, help="continuations per prefix")
    ap.add_argument("--prefix-tokens", type=int, default=256)
    ap.add_argument("--cont-tokens", type=int, default=64)
    ap.add_argument("--groups", type=int, default=8, help="distinct prefixes")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each method (median reported)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    llm = HFBackend(args.model, device=args.device)
    pairs = make_pairs(llm.tok, args.groups, args.k, args.prefix_tokens, args.cont_tokens)
    prefix_len = {p: len(llm.encode_prompt(p)) for p, _ in pairs}
    cont_len = [len(llm.encode_text(c)) for _, c in pairs]
    naive_tokens = sum(prefix_len[p] for p, _ in pairs) + sum(cont_len)
    shared_tokens = sum(prefix_len.values()) + sum(cont_len)

    llm.score(pairs[: args.k * 2])  # warm-up

    def run(reuse):
        llm.prefix_reuse = reuse
        llm.score(pairs)

    t = time_interleaved({"shared": lambda: run(True), "naive": lambda: run(False)}, args.repeats)
    print(
        f"model {args.model} on {llm.device}; {args.groups} prefixes x k={args.k}; "
        f"prefix ~{args.prefix_tokens} tokens, continuation ~{args.cont_tokens} tokens"
    )
    report("continuations", len(pairs), t["shared"], t["naive"], naive_tokens, shared_tokens)


if __name__ == "__main__":
    main()
