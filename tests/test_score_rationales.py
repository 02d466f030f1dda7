import json

import pytest
import torch

from common.rationales import SYSTEM_BOT_EOT, SYSTEM_PLAIN
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


def hand_score(model, tok, preceding, rationale, following, fmt="bot_eot", discount=0.9):
    """Render the whole frame, run one forward, sum discount^i log p over the following text's tokens.
    rationalyst.md 4.2: the user turn is preceding + ' <BOT>' + r + '<EOT>' (debug) or preceding + '. ' + r
    (non-debug), under the variant's system message."""
    system, inserted = {
        "bot_eot": (SYSTEM_BOT_EOT, f" <BOT>{rationale}<EOT>"),
        "plain": (SYSTEM_PLAIN, f". {rationale}"),
    }[fmt]
    user = preceding + (inserted if rationale else "")
    frame = tok.apply_chat_template(
        [{"role": "system", "content": system}, {"role": "user", "content": user}],
        tokenize=False,
        add_generation_prompt=True,
    )
    ctx = tok(frame, add_special_tokens=False).input_ids
    cont = tok(following, add_special_tokens=False).input_ids
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ctx + cont])).logits[0].float(), -1)
    return sum(discount**i * lp[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont))


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


def _score_stage(tmp_path, model, *extra):
    inp = tmp_path / "parsed.jsonl"
    inp.write_text("".join(json.dumps(t) + "\n" for t in TRIPLES))
    out = tmp_path / "scored"
    assert score_rationales.main(["--input", str(inp), "--output", str(out), "--model", model, *extra]) == 0
    return [json.loads(l) for l in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]


def test_plain_format_and_another_discount_equal_the_hand_computation(tiny_llama, tiny_llama_dir, tmp_path):
    """--rationale-format plain (the spec's non-debug layout) with --discount 0.5: both variants under the
    plain system message, the rationale after '. ', and 0.5^i weights over the same per-token log-probs."""
    model, tok = tiny_llama
    rows = _score_stage(tmp_path, tiny_llama_dir, "--device", "cpu", "--rationale-format", "plain", "--discount", "0.5")
    for t, r in zip(TRIPLES, rows):
        want_with = hand_score(model, tok, t["preceding"], t["rationale"], t["following"], "plain", 0.5)
        want_without = hand_score(model, tok, t["preceding"], "", t["following"], "plain", 0.5)
        assert r["score_with"] == pytest.approx(want_with, abs=1e-3)
        assert r["score_without"] == pytest.approx(want_without, abs=1e-3)
        assert r["score_with"] == pytest.approx(sum(0.5**i * lp for i, lp in enumerate(r["logprobs_with"])))
        # not the default frame or discount: the bot_eot frame, or 0.9, give other numbers
        assert abs(r["score_with"] - hand_score(model, tok, t["preceding"], t["rationale"], t["following"])) > 1e-2
        assert abs(r["score_without"] - hand_score(model, tok, t["preceding"], "", t["following"], "plain")) > 1e-2


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["plain", "bot_eot"])
def test_a_real_tokenizer_scores_the_text_as_the_model_reads_it(smollm2_dir, tmp_path, fmt):
    """SmolLM2's tokenizer (as Llama-3's) reads 'April.' + '. r' as 'April', '..', ' r': the shared prefix must
    not end inside such a token, or the stage scores a sequence that tokenising the frame never gives (it
    did, for the plain format: -9.35 against -9.85 for the first triple)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    pieces = [tok.decode([i]) for i in tok("in April.. half", add_special_tokens=False).input_ids]
    assert pieces[:4] == ["in", " April", "..", " half"]
    rows = _score_stage(tmp_path, "smollm2-135m-instruct", "--device", "cpu", "--rationale-format", fmt)
    for t, r in zip(TRIPLES, rows):
        want_with = hand_score(model, tok, t["preceding"], t["rationale"], t["following"], fmt)
        want_without = hand_score(model, tok, t["preceding"], "", t["following"], fmt)
        assert r["score_with"] == pytest.approx(want_with, abs=1e-3)
        assert r["score_without"] == pytest.approx(want_without, abs=1e-3)
