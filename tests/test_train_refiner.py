import json
import random
import re

import pytest
import torch

from common.config import parse_config
from common.tasks.refiner import mwp
from common.tasks.refiner.seq2seq import generate, load_seq2seq
from tests.conftest import CSV
from training import train_refiner

STEP = re.compile(r"^(?P<x>.*) Previous Answer: (?P<z>.*) <hint> (?P<f>.*) \| EOH$")


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "mwp.csv"
    path.write_text(CSV)
    return str(path)


def cfg_for(data, model, out, *extra):
    return [
        "--task",
        "mwp",
        "--input",
        data,
        "--dev",
        data,
        "--model",
        model,
        "--output",
        str(out),
        "--turns",
        "3",
        "--exp-num",
        "2",
        "--batch-size",
        "3",
        "--grad-accum",
        "1",
        "--max-new-tokens",
        "8",
        *extra,
    ]


def test_each_turn_sees_x_a_sample_and_the_oracle_feedback_on_it(data, tiny_t5_dir):
    cfg = parse_config(train_refiner.TrainRefinerConfig, cfg_for(data, tiny_t5_dir, "unused"))
    model, tok = load_seq2seq(tiny_t5_dir, "cpu")
    examples = mwp.load_examples(data)[:3]
    trace = []
    loss, per_turn = train_refiner.refiner_loss(model, tok, mwp, examples, cfg, random.Random(0), trace)
    assert len(per_turn) == 3 and len(trace) == 3 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(sum(per_turn), rel=1e-5)  # the loss is summed over turns
    assert trace[0] == [e["x"] for e in examples]  # turn 1: x alone
    for turn in trace[1:]:
        for e, text in zip(examples, turn):
            m = STEP.match(text)
            assert m and m["x"] == e["x"]
            assert m["f"] == mwp.critique(e, m["z"])  # feedback does not accumulate
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("exploration", ["sampled", "greedy", "none"])
def test_exploration_switch(data, tiny_t5_dir, exploration):
    # the near-uniform tiny T5: its greedy output is empty, its samples (top-p 1) are not and differ
    model_dir = tiny_t5_dir
    cfg = parse_config(
        train_refiner.TrainRefinerConfig,
        cfg_for(data, model_dir, "unused", "--exploration", exploration, "--top-p", "1.0"),
    )
    model, tok = load_seq2seq(model_dir, "cpu")
    examples = mwp.load_examples(data)[:3]
    traces = []
    for _ in range(2):
        torch.manual_seed(1 + len(traces))  # sampling differs between the two calls
        traces.append([])
        _, per_turn = train_refiner.refiner_loss(model, tok, mwp, examples, cfg, random.Random(0), traces[-1])
    greedy = generate(model, tok, [e["x"] for e in examples], max_new_tokens=8)
    if exploration == "none":  # no hypotheses: turn 1 (x -> z) only
        assert len(per_turn) == 1 and traces[0] == [[e["x"] for e in examples]]
        return
    assert len(per_turn) == 3
    hypotheses = [[STEP.match(text)["z"] for text in trace[1]] for trace in traces]
    if exploration == "greedy":  # the generator's greedy output, the same every time
        assert hypotheses == [greedy, greedy]
    else:  # sampled: top-p samples, not the greedy output
        assert hypotheses[0] != hypotheses[1] and hypotheses[0] != greedy
    with pytest.raises(SystemExit, match="--exploration 'beam': one of sampled, greedy, none"):
        train_refiner.main(cfg_for(data, model_dir, "unused", "--exploration", "beam"))


def test_options_are_typed_not_strings():
    # refiner.md 9.1.8: the reference read --number_turn and --exp_num as strings and any --lora as true
    cfg = parse_config(train_refiner.TrainRefinerConfig, ["--turns", "2", "--exp-num", "4", "--lora", "false"])
    assert cfg.turns == 2 and cfg.exp_num == 4 and cfg.lora is False


def _perturbed_copy(src, dst):
    """A 'warm-start' checkpoint: the base with different weights."""
    model, tok = load_seq2seq(src, "cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(dst)
    tok.save_pretrained(dst)
    return str(dst)


def test_warm_start_is_loaded_best_saved_and_a_rerun_resumes(data, tiny_t5_dir, tmp_path):
    warm = _perturbed_copy(tiny_t5_dir, tmp_path / "warm")
    out = tmp_path / "refiner"
    # lr 0: the saved generator must be exactly the warm start (the reference trained flan-t5-base instead)
    assert train_refiner.main(cfg_for(data, warm, out, "--epochs", "1", "--lr", "0")) == 0
    base, _ = load_seq2seq(tiny_t5_dir, "cpu")
    w, _ = load_seq2seq(warm, "cpu")
    best, _ = load_seq2seq(str(out / "best"), "cpu")
    b_sd, w_sd, best_sd = base.state_dict(), w.state_dict(), best.state_dict()
    assert all(torch.equal(best_sd[k], w_sd[k]) for k in w_sd)
    assert not all(torch.equal(best_sd[k], b_sd[k]) for k in b_sd)
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1]
    assert set(metrics["history"][0]["dev"]) >= {"equation_em", "answer_acc"}
    assert len(metrics["history"][0]["train_loss_per_turn"]) == 3
    # a second run with more epochs continues after epoch 1
    assert train_refiner.main(cfg_for(data, warm, out, "--epochs", "2", "--lr", "0")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 1 and [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert json.loads((out / "manifest.json").read_text())["stage"] == "train_refiner"


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_model_and_best_is_the_best_epochs_weights(
    data, tiny_t5_dir, tmp_path
):
    # issue 18.2: a real learning rate, so every epoch changes the weights. The dev metric is `n` (constant),
    # so epoch 1 stays the best and best/ must hold epoch 1's weights, not the last epoch's.
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # the same arithmetic

    def args(out):
        return [sys.executable, "-m", "training.train_refiner"] + cfg_for(
            data, tiny_t5_dir, out, "--epochs", "3", "--lr", "3e-3", "--patience", "0", "--metric", "n"
        )

    subprocess.run(args(tmp_path / "oneshot"), env=env, cwd=REPO, check=True, capture_output=True)
    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(args(resumed), env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and not (resumed / "last" / "state.json").exists():
        time.sleep(0.001)
    proc.kill()
    proc.wait()
    assert json.loads((resumed / "last" / "state.json").read_text())["epoch"] == 1, "killed too late"
    epoch1 = torch.load(resumed / "last" / "training.pt", weights_only=False)["model"]
    subprocess.run(args(resumed), env=env, cwd=REPO, check=True, capture_output=True)

    def weights(path):
        return load_seq2seq(str(path), "cpu")[0].state_dict()

    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("oneshot", "resumed"))
    assert two["resumed_from_epoch"] == 1 and [h["epoch"] for h in two["history"]] == [1, 2, 3]
    assert one["best"]["epoch"] == two["best"]["epoch"] == 1
    assert [h["train_loss_per_turn"] for h in one["history"]] == [h["train_loss_per_turn"] for h in two["history"]]
    last_one = torch.load(tmp_path / "oneshot" / "last" / "training.pt", weights_only=False)["model"]
    last_two = torch.load(resumed / "last" / "training.pt", weights_only=False)["model"]
    assert all(torch.equal(last_one[k], last_two[k]) for k in last_one)  # resumed == uninterrupted
    base, best = weights(tiny_t5_dir), weights(resumed / "best")
    assert all(torch.equal(best[k], epoch1[k]) for k in best)  # the best epoch's weights
    assert not all(torch.equal(best[k], last_two[k]) for k in best)  # not the last epoch's
    assert not all(torch.equal(best[k], base[k]) for k in best)  # and trained
    assert all(torch.equal(v, weights(tmp_path / "oneshot" / "best")[k]) for k, v in best.items())


def test_lora_trains_and_saves_a_merged_model(data, tiny_t5_dir, tmp_path):
    out = tmp_path / "lora"
    assert (
        train_refiner.main(
            cfg_for(data, tiny_t5_dir, out, "--epochs", "1", "--lora", "true", "--lr", "1e-2", "--turns", "2")
        )
        == 0
    )
    from transformers import AutoModelForSeq2SeqLM

    merged = AutoModelForSeq2SeqLM.from_pretrained(out / "best")
    assert merged.config.model_type == "t5" and not any("lora" in k for k in merged.state_dict())
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5_dir).state_dict()
    assert not all(torch.equal(v, base[k]) for k, v in merged.state_dict().items())


def test_a_frozen_encoder_keeps_the_warm_start_weights(data, tiny_t5_dir, tmp_path):
    out = tmp_path / "frozen"
    assert (
        train_refiner.main(
            cfg_for(data, tiny_t5_dir, out, "--epochs", "1", "--lr", "1e-2", "--turns", "2", "--freeze-encoder", "true")
        )
        == 0
    )
    from transformers import AutoModelForSeq2SeqLM

    trained = AutoModelForSeq2SeqLM.from_pretrained(out / "best").state_dict()
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5_dir).state_dict()
    assert all(torch.equal(trained[k], base[k]) for k in base if k.startswith("encoder."))
    assert not all(torch.equal(trained[k], base[k]) for k in base if k.startswith("decoder.block"))


class _RunsCodeWhenUnpickled:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (type(self.marker).touch, (self.marker,))


def test_a_checkpoint_in_the_output_directory_cannot_run_code(data, tiny_t5_dir, tmp_path):
    """The resume checkpoint is loaded with weights_only=True: a training.pt planted in the output
    directory (a shared scratch space) is refused instead of running its pickle."""
    out = tmp_path / "refiner"
    (out / "last").mkdir(parents=True)
    (out / "last" / "state.json").write_text(json.dumps({"epoch": 1, "step": 1}))
    marker = tmp_path / "code-ran"
    torch.save({"model": _RunsCodeWhenUnpickled(marker)}, out / "last" / "training.pt")
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        train_refiner.main(cfg_for(data, tiny_t5_dir, out, "--epochs", "2"))
    assert not marker.exists()
