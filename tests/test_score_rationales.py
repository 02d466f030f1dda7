import json

import pytest
import torch

from common.rationales import SYSTEM_BOT_EOT
from sampling import score_rationales

TRIPLES = [
    {
        "id": "t0",
        "preceding": "Natalia sold clips to 48 of her friends in April.",
        "rationale": "half of 48 is 24",
        "following": "She sold 24 clips in May.",
    },
    {
        "id": "t1",
        "preceding": "Weng earns $12 an hour for babysitting.",
        "rationale": "50 minutes is 5/6 of an hour",
        "following": "She earned $10.",
    },
]


def hand_score(model, tok, preceding, rationale, following):
    """Render the whole frame, run one forward, sum 0.9^i log p over the following text's tokens."""
    user = preceding + (f" <BOT>{rationale}<EOT>" if rationale else "")
    frame = tok.apply_chat_template(
        [{"role": "system", "content": SYSTEM_BOT_EOT}, {"role": "user", "content": user}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ctx = tok(frame, add_special_tokens=False).input_ids
    cont = tok(following, add_special_tokens=False).input_ids
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].float(), -1)
    return sum(0.9**i * lp[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont))


def test_score_equals_hand_computation(tiny_llama, tiny_llama_dir, tmp_path):
    model, tok = tiny_llama
    inp = tmp_path / "parsed.jsonl"
    inp.write_text("".join(json.dumps(t) + "\n" for t in TRIPLES))
    out = tmp_path / "scored"
    assert (
        score_rationales.main(["--input", str(inp), "--output", str(out), "--model", tiny_llama_dir, "--device", "cpu"])
        == 0
    )
    rows = [json.loads(l) for l in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]
    for t, r in zip(TRIPLES, rows):
        want_with = hand_score(model, tok, t["preceding"], t["rationale"], t["following"])
        want_without = hand_score(model, tok, t["preceding"], "", t["following"])
        assert r["score_with"] == pytest.approx(want_with, abs=1e-3)
        assert r["score_without"] == pytest.approx(want_without, abs=1e-3)
        assert r["gain"] == pytest.approx(r["score_with"] - r["score_without"])
        assert len(r["logprobs_with"]) == len(tok(t["following"], add_special_tokens=False).input_ids)


def _rewrites(n: int) -> list[dict]:
    """Realistic extraction output: worked problems with a rationale before every step."""
    import reasoning_gym

    docs = []
    for i, x in enumerate(reasoning_gym.create_dataset("gsm_symbolic", size=n, seed=5)):
        text = "Question: " + x["question"] + "\nAnswer: " + x["metadata"]["answer_cot"]
        lines = text.split("\n")
        out = lines[0] + "".join(
            f"\n<BOT>Step {k}: keep track of the quantities.<EOT> {line}" for k, line in enumerate(lines[1:], 1)
        )
        docs.append({"id": f"doc{i}", "source": "gsm_symbolic", "input": text, "output": out})
    return docs


def test_chain_killed_in_score_then_resumed_is_identical(tiny_llama_dir, tmp_path):
    """parse -> score (SIGKILL in the middle, rerun) -> filter equals the uninterrupted chain."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO, kill_mid_shard

    extract = tmp_path / "extract.jsonl"
    extract.write_text("".join(json.dumps(d) + "\n" for d in _rewrites(12)))
    env = dict(os.environ, HF_HUB_OFFLINE="1")

    def stage(module, *args, wait=True):
        cmd = [sys.executable, "-m", module, *map(str, args)]
        if not wait:
            return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(cmd, env=env, cwd=REPO, check=True, capture_output=True)

    score_args = ["--model", tiny_llama_dir, "--device", "cpu", "--batch-size", "2"]
    for run in ("oneshot", "resumed"):
        d = tmp_path / run
        stage("sampling.parse_rationales", "--input", extract, "--output", d / "parsed")
        if run == "resumed":
            proc = stage(
                "sampling.score_rationales", "--input", d / "parsed", "--output", d / "scored", *score_args, wait=False
            )
            kill_mid_shard(proc, d / "scored" / "part-00000-of-00001.jsonl.journal", 6)
        stage("sampling.score_rationales", "--input", d / "parsed", "--output", d / "scored", *score_args)
        stage("sampling.filter_rationales", "--input", d / "scored", "--output", d / "filtered")
    for rel in (
        "scored/part-00000-of-00001.jsonl",
        "filtered/train/part-00000-of-00001.jsonl",
        "filtered/dev/part-00000-of-00001.jsonl",
    ):
        assert (tmp_path / "resumed" / rel).read_bytes() == (tmp_path / "oneshot" / rel).read_bytes(), rel
    n = len((tmp_path / "oneshot" / "scored/part-00000-of-00001.jsonl").read_text().splitlines())
    assert n > 40
