import json

import pytest
import torch

from sampling import score_rationales
from sampling.rationales import SYSTEM_BOT_EOT

TRIPLES = [
    {"id": "t0", "preceding": "Natalia sold clips to 48 of her friends in April.",
     "rationale": "half of 48 is 24", "following": "She sold 24 clips in May."},
    {"id": "t1", "preceding": "Weng earns $12 an hour for babysitting.",
     "rationale": "50 minutes is 5/6 of an hour", "following": "She earned $10."},
]


def hand_score(model, tok, preceding, rationale, following):
    """Render the whole frame, run one forward, sum 0.9^i log p over the following text's tokens."""
    user = preceding + (f" <BOT>{rationale}<EOT>" if rationale else "")
    frame = tok.apply_chat_template([{"role": "system", "content": SYSTEM_BOT_EOT}, {"role": "user", "content": user}],
                                    tokenize=False, add_generation_prompt=True)
    ctx = tok(frame, add_special_tokens=False).input_ids
    cont = tok(following, add_special_tokens=False).input_ids
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].float(), -1)
    return sum(0.9 ** i * lp[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont))


def test_score_equals_hand_computation(tiny_llama, tiny_llama_dir, tmp_path):
    model, tok = tiny_llama
    inp = tmp_path / "parsed.jsonl"
    inp.write_text("".join(json.dumps(t) + "\n" for t in TRIPLES))
    out = tmp_path / "scored"
    assert score_rationales.main(["--input", str(inp), "--output", str(out), "--model", tiny_llama_dir,
                                  "--device", "cpu"]) == 0
    rows = [json.loads(l) for l in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]
    for t, r in zip(TRIPLES, rows):
        want_with = hand_score(model, tok, t["preceding"], t["rationale"], t["following"])
        want_without = hand_score(model, tok, t["preceding"], "", t["following"])
        assert r["score_with"] == pytest.approx(want_with, abs=1e-3)
        assert r["score_without"] == pytest.approx(want_without, abs=1e-3)
        assert r["gain"] == pytest.approx(r["score_with"] - r["score_without"])
        assert len(r["logprobs_with"]) == len(tok(t["following"], add_special_tokens=False).input_ids)
