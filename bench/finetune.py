"""Fine-tuning tokens per second, padded batches against padding-free ones (common.training.packed_collator,
with the attention finetune uses for them: common.training.use_packed_attention), on the same rows of realistic, varied lengths (RATIONALYST's released rationale rows when ../shared/data is
there, else GSM8K-style problems), one run. The bound is the padding fraction: the tokens a padded batch
computes over the real tokens.

    python bench/finetune.py [--batch-size 8] [--lora true]
"""

from __future__ import annotations

import argparse
import json

from benchlib import REPO, time_interleaved

from common.models import load_causal_lm
from common.training import causal_example, collate, packed_collator, use_packed_attention

RELEASE = REPO.parent / "shared" / "data" / "rationalyst_release" / "llm_training_data_eval_first60.jsonl"


def rows() -> list[tuple[str, str]]:
    if RELEASE.exists():
        data = [json.loads(line) for line in RELEASE.read_text().splitlines() if line.strip()]
        return [(r["preceeding"], r["rationale"]) for r in data]
    from common.tasks.rationalyst import gsm_symbolic

    return [(x["question"], x["solution"]) for x in gsm_symbolic.load("train", limit=64)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    model, tok = load_causal_lm(args.model, "cpu", "float32")
    model.train()
    examples = [causal_example(tok, p, t, "", 1024) for p, t in rows()][: args.batch_size * args.batches]
    batches = [examples[i : i + args.batch_size] for i in range(0, len(examples), args.batch_size)]
    padded = [collate(tok.pad_token_id)(b) for b in batches]
    packed = [packed_collator()(b) for b in batches]
    real = sum(len(e["input_ids"]) for e in examples)
    computed = sum(int(b["input_ids"].numel()) for b in padded)

    packed_attention = use_packed_attention(model)

    def step(batch_list, attention: str) -> None:
        model.set_attn_implementation(attention)
        for batch in batch_list:
            model.zero_grad()
            model(**batch, use_cache=False).loss.backward()

    t = time_interleaved(
        {"packed": lambda: step(packed, packed_attention), "padded": lambda: step(padded, "sdpa")}, args.repeats
    )
    lengths = sorted(len(e["input_ids"]) for e in examples)
    print(
        f"{len(examples)} rows of {lengths[0]}-{lengths[-1]} tokens (median {lengths[len(lengths) // 2]}), "
        f"batches of {args.batch_size}, forward + backward, {args.model} on CPU, {packed_attention} attention packed"
    )
    print(f"padding-free: {real / t['packed']:8.1f} training tokens/s ({t['packed']:.1f} s)")
    print(f"padded      : {real / t['padded']:8.1f} training tokens/s ({t['padded']:.1f} s)")
    ratio, bound = t["padded"] / t["packed"], computed / real
    print(f"speed ratio : {ratio:.2f}x")
    print(f"token bound : {bound:.2f}x  ({computed} padded / {real} real tokens)")
    print(f"ratio/bound : {ratio / bound:.0%}")


if __name__ == "__main__":
    main()
