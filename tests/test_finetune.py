import json
import re
from pathlib import Path

import pytest
import torch

from common import training
from training import finetune

ROWS = [
    {
        "id": f"r{i}",
        "preceding": f"Natalia sold {n} clips in April.",
        "rationale": f"Half of {n} is {n // 2}.",
        "input": f"She has number0 apples and eats number1 . how many left ? {i}",
        "target": "#0: subtract ( number0, number1 ) | EOS",
    }
    for i, n in enumerate([48, 24, 72, 10, 12, 36])
]


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_label_mask_covers_exactly_the_prompt(tiny_tokenizer):
    tok = tiny_tokenizer
    ex = training.causal_example(tok, "The cat sat.", "It was tired.", system="", max_length=512)
    head = tok.apply_chat_template(
        [{"role": "user", "content": "The cat sat."}], tokenize=False, add_generation_prompt=True
    )
    n_head = len(tok(head, add_special_tokens=False).input_ids)
    assert ex["labels"][:n_head] == [training.IGNORE] * n_head
    assert ex["labels"][n_head:] == ex["input_ids"][n_head:] and all(
        t != training.IGNORE for t in ex["labels"][n_head:]
    )
    assert tok.decode(ex["input_ids"][n_head:]) == "It was tired.<|im_end|>\n"  # the turn, and its end
    assert ex["input_ids"].count(tok.bos_token_id) == 1 and ex["input_ids"][0] == tok.bos_token_id  # one BOS
    short = training.causal_example(tok, "The cat sat.", "It was tired.", system="", max_length=n_head + 2)
    assert len(short["input_ids"]) == len(short["labels"]) == n_head + 2


def test_tiny_model_lowers_its_dev_loss(tiny_llama_dir, tmp_path):
    data = write(tmp_path / "train.jsonl", ROWS)
    assert (
        finetune.main(
            [
                "--train",
                data,
                "--dev",
                data,
                "--output",
                str(tmp_path / "out"),
                "--model",
                tiny_llama_dir,
                "--lr",
                "3e-3",
                "--epochs",
                "4",
                "--batch-size",
                "3",
                "--grad-accum",
                "1",
                "--warmup-ratio",
                "0",
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    losses = [h["eval_loss"] for h in metrics["dev_loss"]]
    assert len(losses) == 4 and all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.9 * losses[0]
    assert (tmp_path / "out" / "final" / "model.safetensors").exists()


def test_an_empty_dev_set_trains_without_evaluation(tiny_llama_dir, tmp_path, caplog):
    """filter_rationales' 5% dev of 8 kept rationales is empty: the run trains on, with a warning, rather than
    failing at the first evaluation for want of an eval_loss (seen in `make demo`)."""
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "part-00000-of-00001.jsonl").write_text("")
    args = ["--train", write(tmp_path / "train.jsonl", ROWS), "--dev", str(tmp_path / "dev")]
    args += ["--output", str(tmp_path / "out"), "--model", tiny_llama_dir, "--epochs", "1", "--batch-size", "3"]
    assert finetune.main(args + ["--grad-accum", "1"]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["dev_examples"] == 0 and metrics["dev_loss"] == [] and metrics["steps"] == 2
    assert (tmp_path / "out" / "final" / "model.safetensors").exists()
    assert "holds no dev records" in caplog.text


def test_resume_from_a_checkpoint_continues_the_same_run(tiny_llama_dir, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, Trainer

    data = write(tmp_path / "train.jsonl", ROWS)
    args = [
        "--train",
        data,
        "--model",
        tiny_llama_dir,
        "--lr",
        "3e-3",
        "--max-steps",
        "6",
        "--eval-steps",
        "2",
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
    ]
    assert finetune.main(args + ["--output", str(tmp_path / "oneshot")]) == 0

    calls = {"n": 0}
    original = Trainer.training_step

    def crash_after_four(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt("simulated preemption")
        return original(self, *a, **kw)

    monkeypatch.setattr(Trainer, "training_step", crash_after_four)
    with pytest.raises(KeyboardInterrupt):
        finetune.main(args + ["--output", str(tmp_path / "resumed")])
    monkeypatch.setattr(Trainer, "training_step", original)
    assert finetune.latest_checkpoint(tmp_path / "resumed").endswith("checkpoint-4")
    assert finetune.main(args + ["--output", str(tmp_path / "resumed")]) == 0
    metrics = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert metrics["resumed_from"].endswith("checkpoint-4") and metrics["steps"] == 6
    a = AutoModelForCausalLM.from_pretrained(tmp_path / "oneshot" / "final").state_dict()
    b = AutoModelForCausalLM.from_pretrained(tmp_path / "resumed" / "final").state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_seq2seq_mode_and_lora(tiny_t5_dir, tmp_path):
    data = write(tmp_path / "train.jsonl", ROWS)
    refine = [
        dict(
            r,
            id=f"n{i}",
            input=r["input"] + " Previous Answer: #0: add ( number0, number1 ) | EOS <hint> "
            "the operator in #0 is incorrect. | EOH",
        )
        for i, r in enumerate(ROWS[:4])
    ]
    noisy = write(tmp_path / "refine.jsonl", refine)
    out = tmp_path / "s2s"
    assert (
        finetune.main(
            [
                "--train",
                data,
                "--noisy",
                noisy,
                "--dev",
                data,
                "--output",
                str(out),
                "--model",
                tiny_t5_dir,
                "--mode",
                "seq2seq",
                "--prompt-field",
                "input",
                "--target-field",
                "target",
                "--epochs",
                "1",
                "--batch-size",
                "3",
                "--grad-accum",
                "1",
                "--lora",
                "true",
                "--lr",
                "1e-3",
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train_examples"], metrics["steps"]) == (10, 4)  # 6 + 4 noisy records, batches of 3
    from transformers import AutoModelForSeq2SeqLM

    assert AutoModelForSeq2SeqLM.from_pretrained(out / "final").config.model_type == "t5"  # LoRA merged
    ex = training.seq2seq_example(
        finetune.load_model(finetune.FinetuneConfig(model=tiny_t5_dir, mode="seq2seq"))[1],
        "a b",
        "#0: add ( number0, number1 ) | EOS",
        64,
    )
    assert training.IGNORE not in ex["labels"]  # pads are masked by the collator, never in the data
    batch = training.collate(0)([ex, {"input_ids": [1], "labels": [2]}])
    assert batch["labels"][1, 1:].eq(training.IGNORE).all()


def test_seq2seq_labels_have_no_start_token_and_end_with_eos(tiny_tokenizer):
    from transformers import AutoTokenizer

    from common.models import resolve

    bert = AutoTokenizer.from_pretrained(resolve("all-minilm-l6-v2"))
    ids = training.target_ids(bert, "#0: add ( number0, number1 ) | EOS", 64)
    assert ids[0] != bert.cls_token_id and ids[-1] == bert.sep_token_id  # the model prepends [CLS] itself
    tiny = training.target_ids(tiny_tokenizer, "No hint.", 64)  # this one adds BOS and no EOS
    assert tiny[0] != tiny_tokenizer.bos_token_id and tiny[-1] == tiny_tokenizer.eos_token_id
    assert len(training.target_ids(tiny_tokenizer, "No hint. " * 50, 8)) == 8


def test_freeze_encoder_trains_the_decoder_only(tiny_t5_dir, tmp_path):
    data = write(tmp_path / "train.jsonl", ROWS)
    out = tmp_path / "frozen"
    args = [
        "--train",
        data,
        "--output",
        str(out),
        "--model",
        tiny_t5_dir,
        "--prompt-field",
        "input",
        "--target-field",
        "target",
        "--epochs",
        "1",
        "--batch-size",
        "3",
        "--grad-accum",
        "1",
        "--lr",
        "1e-2",
        "--freeze-encoder",
        "true",
    ]
    assert finetune.main(args + ["--mode", "seq2seq"]) == 0
    from transformers import AutoModelForSeq2SeqLM

    trained = AutoModelForSeq2SeqLM.from_pretrained(out / "final").state_dict()
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5_dir).state_dict()
    assert all(torch.equal(trained[k], base[k]) for k in base if k.startswith("encoder."))
    assert not all(torch.equal(trained[k], base[k]) for k in base if k.startswith("decoder.block"))
    with pytest.raises(SystemExit, match="seq2seq"):
        finetune.main(args + ["--mode", "causal", "--output", str(tmp_path / "causal")])


# ----------------------------------------------------------------------------- issue 18: best checkpoint, LoRA merge


def test_rising_dev_loss_stops_early_and_keeps_the_best_checkpoint(tiny_llama_dir, tmp_path):
    """The dev targets contradict the training targets, so at lr 1e-2 the dev loss falls for one epoch and
    then rises: with --patience 2, training stops two evaluations after the best one, and final/ holds
    the best epoch's weights (kept on disk), not the last ones."""
    from safetensors.torch import load_file

    train = write(tmp_path / "train.jsonl", ROWS)
    dev = write(tmp_path / "dev.jsonl", [dict(r, rationale="The cat sat on the mat and a dog ran.") for r in ROWS])
    out = tmp_path / "out"
    args = ["--train", train, "--dev", dev, "--output", str(out), "--model", tiny_llama_dir, "--lr", "1e-2"]
    args += ["--epochs", "8", "--batch-size", "3", "--grad-accum", "1", "--warmup-ratio", "0", "--patience", "2"]
    assert finetune.main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    losses = [h["eval_loss"] for h in metrics["dev_loss"]]
    best = losses.index(min(losses))
    assert best == 1 and losses[1] < losses[0] and all(x > losses[best] for x in losses[best + 1 :])  # fell, then rose
    assert len(losses) == best + 1 + 2  # stopped after 2 evaluations without improvement, not after 8 epochs
    assert metrics["steps"] == 2 * len(losses) < 2 * 8  # 6 records, batches of 3: 2 steps per epoch
    assert metrics["best_checkpoint"].endswith("checkpoint-4")  # epoch 2
    final = load_file(out / "final" / "model.safetensors")
    kept = load_file(out / "checkpoints" / "checkpoint-4" / "model.safetensors")
    last = load_file(out / "checkpoints" / f"checkpoint-{metrics['steps']}" / "model.safetensors")
    assert final.keys() == kept.keys() and all(torch.equal(final[k], kept[k]) for k in final)
    assert not all(torch.equal(final[k], last[k]) for k in final)


def _lora_t5(tiny_t5_dir, tmp_path, name, *extra):
    out = tmp_path / name
    args = ["--train", write(tmp_path / "train.jsonl", ROWS), "--output", str(out), "--model", tiny_t5_dir]
    args += ["--mode", "seq2seq", "--prompt-field", "input", "--target-field", "target", "--epochs", "2"]
    args += ["--batch-size", "3", "--grad-accum", "1", "--lr", "1e-2", "--warmup-ratio", "0", "--lora", "true"]
    assert finetune.main(args + list(extra)) == 0
    from safetensors.torch import load_file

    merged = load_file(out / "final" / "model.safetensors")
    base = load_file(Path(tiny_t5_dir) / "model.safetensors")
    return out, merged, base


LINEAR = re.compile(r"\.(q|k|v|o|wi|wo)\.weight$")  # T5's linear layers: where "all-linear" LoRA applies


def test_lora_is_merged_into_a_plain_model(tiny_t5_dir, tmp_path):
    """Merged: no adapter files or keys left, the base model's key set, every adapted linear weight
    changed by its merged update, and everything LoRA does not touch (embeddings, norms, the LM head,
    the relative position biases) equal to the base."""
    out, merged, base = _lora_t5(tiny_t5_dir, tmp_path, "lora")
    assert not list((out / "final").glob("adapter_*"))
    assert not [k for k in merged if "lora_" in k or "base_model" in k or "base_layer" in k]
    assert set(merged) == set(base)
    adapted = [k for k in base if LINEAR.search(k)]
    assert len(adapted) == 2 * 6 + 2 * 10  # encoder: 2 blocks x (q k v o wi wo); decoder: 2 x (2 x qkvo + wi wo)
    assert all(not torch.equal(merged[k], base[k]) for k in adapted)
    assert all(torch.equal(merged[k], base[k]) for k in base if k not in adapted)


def test_lora_with_a_frozen_encoder_changes_the_decoder_only(tiny_t5_dir, tmp_path):
    """--lora with --freeze-encoder: the encoder's adapters stay at zero, so its merged weights equal the
    base exactly, while every adapted decoder weight moves."""
    _, merged, base = _lora_t5(tiny_t5_dir, tmp_path, "lora-frozen", "--freeze-encoder", "true")
    assert set(merged) == set(base)
    assert all(torch.equal(merged[k], base[k]) for k in base if not k.startswith("decoder."))
    decoder = [k for k in base if k.startswith("decoder.") and LINEAR.search(k)]
    assert len(decoder) == 20 and all(not torch.equal(merged[k], base[k]) for k in decoder)


def test_released_rationales_train_a_model(tiny_llama_dir, tmp_path):
    """RATIONALYST's released rows ({preceeding (sic), rationale, following}, no id) train as they are; a
    duplicated row is dropped and counted; the number-of-rationales subset is seeded."""
    from tests.conftest import shared_data

    rows = [
        json.loads(x)
        for x in shared_data("rationalyst_release", "llm_training_data_eval_first60.jsonl")
        .read_text()
        .splitlines()[:12]
    ]
    assert "preceeding" in rows[0] and "id" not in rows[0]
    train = write(tmp_path / "released.jsonl", rows + rows[:2])
    out = tmp_path / "out"
    args = [
        "--train",
        train,
        "--output",
        str(out),
        "--model",
        tiny_llama_dir,
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
        "--lr",
        "1e-3",
        "--max-length",
        "256",
    ]
    assert finetune.main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_examples"] == 12 and metrics["duplicates_dropped"] == 2
    assert (out / "final" / "model.safetensors").exists() and metrics["steps"] == 2
    sub = tmp_path / "sub"
    assert finetune.main([*args[:2], "--output", str(sub), *args[4:], "--max-train", "5"]) == 0
    assert json.loads((sub / "metrics.json").read_text())["train_examples"] == 5


def test_resume_skips_a_checkpoint_whose_save_was_cut_off(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        ckpt = tmp_path / "checkpoints" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "model.safetensors").write_bytes(b"")
        if complete:  # the Trainer writes trainer_state.json last
            (ckpt / "trainer_state.json").write_text("{}")
    assert finetune.latest_checkpoint(tmp_path).endswith("checkpoint-4")
    assert finetune.latest_checkpoint(tmp_path / "none") is None


def test_lora_under_fsdp_is_refused_before_anything_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # what accelerate launch with an FSDP config sets
    with pytest.raises(SystemExit, match="--lora true under FSDP is not supported"):
        finetune.main(["--train", "missing.jsonl", "--output", str(tmp_path), "--model", "nowhere", "--lora", "true"])


def test_bf16_training_saves_final_in_bf16_and_only_complete(tiny_llama_dir, tmp_path):
    from safetensors import safe_open

    data = write(tmp_path / "train.jsonl", ROWS)
    args = ["--train", data, "--output", str(tmp_path / "out"), "--model", tiny_llama_dir, "--max-steps", "1"]
    assert finetune.main(args + ["--precision", "bf16", "--batch-size", "2", "--grad-accum", "1"]) == 0
    with safe_open(tmp_path / "out" / "final" / "model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    assert not (tmp_path / "out" / "final.tmp").exists()
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["processes"] == 1 and metrics["gradient_accumulation"] == 1


def cpu_variant_of_the_fsdp_config(path: Path) -> Path:
    """configs/accelerate/fsdp.yaml as shipped, changed only where a CPU requires it: use_cpu, no bf16, and no
    sync_module_states / cpu_ram_efficient_loading (accelerate needs a GPU to build the broadcast's init)."""
    import yaml

    from tests.conftest import REPO

    cfg = yaml.safe_load((REPO / "configs" / "accelerate" / "fsdp.yaml").read_text())
    assert cfg["fsdp_config"]["fsdp_activation_checkpointing"] is True
    assert cfg["fsdp_config"]["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    cfg.update(use_cpu=True, mixed_precision="no", num_processes=2)
    cfg["fsdp_config"].update(fsdp_sync_module_states=False, fsdp_cpu_ram_efficient_loading=False)
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_two_processes_through_accelerate_launch_train_save_and_resume(tiny_llama_dir, tmp_path):
    """The multi-process branch of slurm/60_finetune.sbatch on CPU: `accelerate launch` with the FSDP config's
    CPU variant, 2 processes over gloo. On a CPU accelerate runs the processes as one data-parallel job (its
    FSDP wrapping needs a GPU; bench/gpu_check.py covers that): what is tested here is the rest of the
    multi-process path: the accumulation from the process count, rank 0 alone writing final/ and
    metrics.json after the barrier, resuming both processes from a checkpoint, LoRA refused."""
    import subprocess

    from transformers import AutoModelForCausalLM

    from tests.conftest import REPO

    config = cpu_variant_of_the_fsdp_config(tmp_path / "fsdp-cpu.yaml")
    data = write(tmp_path / "train.jsonl", ROWS * 3)
    out = tmp_path / "out"

    def launch(*extra: str) -> subprocess.CompletedProcess:
        cmd = [str(REPO / ".venv" / "bin" / "accelerate"), "launch", "--config_file", str(config)]
        cmd += ["--num_processes", "2", "--main_process_port", str(free_port()), "-m", "training.finetune"]
        cmd += ["--train", data, "--dev", data, "--output", str(out), "--model", tiny_llama_dir, "--lr", "3e-3"]
        cmd += ["--batch-size", "2", "--effective-batch", "8", "--eval-steps", "2", "--warmup-ratio", "0", *extra]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)

    first = launch("--max-steps", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["gradient_accumulation"] == 2 and metrics["steps"] == 2
    assert first.stderr.count("finetune: 2 steps;") == 1  # only rank 0 gets past the barrier to metrics.json
    assert sorted(p.name for p in (out / "checkpoints" / "checkpoint-2").glob("rng_state_*.pth")) == [
        "rng_state_0.pth",
        "rng_state_1.pth",
    ]
    # a longer run into the same directory resumes both processes from checkpoint-2
    (out / "metrics.json").unlink()
    second = launch("--max-steps", "4")
    assert second.returncode == 0, second.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"].endswith("checkpoint-2") and metrics["steps"] == 4
    assert AutoModelForCausalLM.from_pretrained(out / "final").num_parameters() > 0
    assert not (out / "final.tmp").exists()
    lora = launch("--max-steps", "2", "--lora", "true")
    assert lora.returncode != 0 and "--lora true under FSDP is not supported" in lora.stderr


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
