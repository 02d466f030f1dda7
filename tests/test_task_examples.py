"""training.task_examples: the SFT baseline's records, trained on by finetune and answered with cot."""

import json

from training import finetune, task_examples


def test_sft_records_train_an_agent(tmp_path, tiny_llama_dir):
    out = tmp_path / "ex"
    assert task_examples.main(["--dataset", "chain_sum", "--limit", "20", "--output", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "train" / "part-00000-of-00001.jsonl").read_text().splitlines()]
    assert len(rows) == 19 and (out / "dev" / "part-00000-of-00001.jsonl").exists()
    assert rows[0]["prompt"].startswith("Question: What is ") and rows[0]["target"].endswith(".")
    assert "The answer is:" in rows[0]["target"]
    model = tmp_path / "sft"
    assert (
        finetune.main(
            [
                "--train",
                str(out / "train"),
                "--dev",
                str(out / "dev"),
                "--output",
                str(model),
                "--model",
                tiny_llama_dir,
                "--prompt-field",
                "prompt",
                "--target-field",
                "target",
                "--max-steps",
                "2",
                "--batch-size",
                "4",
                "--grad-accum",
                "1",
            ]
        )
        == 0
    )
    assert (model / "final" / "model.safetensors").exists()
