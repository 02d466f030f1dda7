"""The sbatch files and slurm/pipeline.sh --local run unchanged without Slurm: the whole RATIONALYST chain
(data stages, fine-tune, inference per heuristic, evaluation) on tiny models, with the demo recipes.
Submitting to a real single-node Slurm is tests/test_slurm_cluster.py."""

import json
import subprocess

import pytest

from tests.conftest import REPO
from tests.slurm_cluster import pipeline, tiny_chain_env, tiny_refiner_env


@pytest.mark.slow
def test_rationalyst_chain_with_pipeline_local(tiny_llama_dir, tmp_path):
    run_dir = tmp_path / "run"
    env = tiny_chain_env(tmp_path, tiny_llama_dir, run_dir)
    result = pipeline(env, "rationalyst", "--local")
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "job local task 1" in result.stdout  # the prefilter array ran as 2 tasks
    counts = {
        d: json.loads((run_dir / d / "manifest.json").read_text())["counts"]
        for d in ("prefilter", "extract_datasets", "extract_web", "parsed", "scored", "filtered")
    }
    prefilter = json.loads((run_dir / "prefilter" / "manifest.json").read_text())
    assert prefilter["shards_finished"] == 2 and prefilter["config"]["embedder"] == "all-minilm-l6-v2"  # recipe
    assert counts["extract_datasets"]["out"] == 2 and counts["parsed"]["out"] == counts["scored"]["out"] > 0
    assert counts["filtered"]["kept"] == counts["scored"]["out"]  # tau -1000 keeps everything
    assert (run_dir / "rationalyst_model" / "final" / "config.json").exists()
    # one inference run per heuristic (an array task each), with the fine-tuned rationale model, then the report
    for heuristic in ("rationalyst", "random"):
        manifest = json.loads((run_dir / "inference" / f"gsm_symbolic-{heuristic}" / "manifest.json").read_text())
        assert manifest["counts"]["out"] == 4 and manifest["config"]["heuristic"] == heuristic
    rationalyst = json.loads((run_dir / "inference" / "gsm_symbolic-rationalyst" / "manifest.json").read_text())
    assert rationalyst["config"]["rationale_model"] == str(run_dir / "rationalyst_model" / "final")
    report = (run_dir / "report" / "report.md").read_text()
    assert "| gsm_symbolic | rationalyst | 4 |" in report and "| gsm_symbolic | random | 4 |" in report
    assert "random − rationalyst" in report  # the paired comparison
    # step verification beside inference: each scorer on perturbed solutions, then its report
    for scorer in ("rationalyst", "likelihood", "random"):
        verify = run_dir / "verify" / f"perturbed_gsm_symbolic-{scorer}"
        assert json.loads((verify / "manifest.json").read_text())["counts"]["out"] == 4  # 2 questions, 2 solutions
    verification = (run_dir / "verify" / "report" / "report.md").read_text()
    assert "| rationalyst |" in verification and "rationalyst - likelihood" in verification
    # the demo's tables come from the run directory alone
    shown = subprocess.run(
        [env["PYTHON"], "-m", "common.demo", "report", str(run_dir)], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "| prefilter " in shown.stdout and "| filter " in shown.stdout and report in shown.stdout
    assert verification in shown.stdout

    # a rerun of an array task resumes: its finished shard is skipped before any model is loaded;
    # the same stage outside the array (1 shard, not 2) is refused rather than mixed in
    task = dict(env, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_TASK_COUNT="2")
    again = subprocess.run(
        ["bash", "slurm/40_score_rationales.sbatch"], cwd=REPO, env=task, capture_output=True, text=True
    )
    assert again.returncode == 0 and "part-00001-of-00002.jsonl is finished; skipping" in again.stderr
    other = subprocess.run(
        ["bash", "slurm/40_score_rationales.sbatch"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert other.returncode != 0 and "num_shards" in other.stdout + other.stderr
    assert "FAILED (exit" in other.stdout  # the log's last line names the failure
    # finished stages are skipped on a rerun of the whole chain (the fine-tune by its metrics.json)
    rerun = pipeline(env, "rationalyst", "--local")
    assert rerun.returncode == 0 and "rationalyst_model/metrics.json exists: finished; skipping" in rerun.stdout


@pytest.mark.slow
def test_sft_baseline_with_pipeline_local(tiny_llama_dir, tmp_path):
    """rationalyst.md 9's SFT baseline as one pipeline: question -> solution records, the agent fine-tuned on
    them, zero-shot chain of thought with the fine-tuned model, the report."""
    run_dir = tmp_path / "sft"
    env = dict(tiny_chain_env(tmp_path, tiny_llama_dir, run_dir), SFT_DATASET="gsm_symbolic")
    env["TASK_EXAMPLES_ARGS"] = "--limit 8 --dev-fraction 0.25"
    env["INFERENCE_ARGS"] = env["INFERENCE_ARGS"].replace("--shots 1 ", "")  # the pipeline's SHOTS=0 stands
    result = pipeline(env, "sft", "--local")
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert [line for line in result.stdout.splitlines() if line.startswith("== ")] == [
        "== slurm/55_task_examples.sbatch",
        "== slurm/60_finetune.sbatch FINETUNE_INPUT=task_examples FINETUNE_OUTPUT=sft_model FINETUNE_RECIPE=finetune-sft",
        f"== slurm/70_inference.sbatch MODEL={run_dir}/sft_model/final SHOTS=0",
        "== slurm/80_evaluate.sbatch",
    ]
    assert json.loads((run_dir / "task_examples" / "manifest.json").read_text())["counts"] == {
        "examples": 8,
        "train": 6,
        "dev": 2,
    }
    tuned = json.loads((run_dir / "sft_model" / "metrics.json").read_text())
    assert tuned["config"]["prompt_field"] == "prompt" and tuned["config"]["train"] == str(
        run_dir / "task_examples/train"
    )
    inference = json.loads((run_dir / "inference" / "gsm_symbolic-cot" / "manifest.json").read_text())
    assert inference["config"]["model"] == str(run_dir / "sft_model" / "final") and inference["config"]["shots"] == 0
    assert inference["counts"]["out"] == 4 and not (run_dir / "rationalyst_model").exists()
    assert "| gsm_symbolic | cot | 4 |" in (run_dir / "report" / "report.md").read_text()


def test_pipeline_usage(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "RUN_DIR": str(tmp_path / "run"), "LOG_DIR": str(tmp_path / "logs")}
    for args, message in (
        (["nonsense"], "usage: slurm/pipeline.sh rationalyst|refiner|refiner_supervised|sft|all"),
        (["rationalyst", "--locl"], "unknown option --locl"),
    ):
        bad = subprocess.run(["bash", "slurm/pipeline.sh", *args], cwd=REPO, env=env, capture_output=True, text=True)
        assert bad.returncode == 2 and message in bad.stderr


@pytest.mark.slow
def test_refiner_chain_with_pipeline_local(tiny_t5_dir, tmp_path):
    refiner_dir = tmp_path / "refiner"
    env = dict(
        tiny_chain_env(tmp_path, "not-this-model", tmp_path / "run"),
        **tiny_refiner_env(tmp_path, tiny_t5_dir, refiner_dir),
        FINETUNE_ARGS="--this-would-fail",
    )
    result = pipeline(env, "refiner", "--local")
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    critic_data = json.loads((refiner_dir / "critic_data" / "manifest.json").read_text())
    assert critic_data["config"]["task"] == "mwp" and critic_data["counts"]["critic"] > 6
    for model in ("warmstart", "critic"):  # REFINER_*_ARGS, not FINETUNE_ARGS
        assert (refiner_dir / model / "metrics.json").exists() and (refiner_dir / model / "final").is_dir()
    assert (refiner_dir / "refiner" / "best").is_dir()
    for critic in ("critic", "oracle"):  # one array task per critic
        predict = json.loads((refiner_dir / f"predict-{critic}" / "manifest.json").read_text())
        assert predict["counts"]["out"] == 3
        expected = str(refiner_dir / "critic" / "final") if critic == "critic" else "oracle"
        assert predict["config"]["critic"] == expected
    # `make demo DEMO_PIPELINES=refiner`: the report prints REFINER's per-turn tables without RATIONALYST outputs
    shown = subprocess.run(
        [env["PYTHON"], "-m", "common.demo", "report", str(tmp_path / "run"), str(refiner_dir)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert "RATIONALYST: no outputs" in shown.stdout and "REFINER mwp, critic oracle" in shown.stdout
    assert "equation_em" in shown.stdout and "oracle (T = 3) 66.0" in shown.stdout


@pytest.mark.slow
def test_refiner_supervised_baseline_with_pipeline_local(tiny_t5_dir, tmp_path):
    refiner_dir = tmp_path / "supervised"
    env = dict(
        tiny_chain_env(tmp_path, "not-this-model", tmp_path / "run"),
        **tiny_refiner_env(tmp_path, tiny_t5_dir, refiner_dir),
    )
    env.pop("WARMSTART_FRACTION")  # the baseline trains on all of the data whatever the main chain's fraction
    result = pipeline(env, "refiner_supervised", "--local")
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert [line for line in result.stdout.splitlines() if line.startswith("== ")] == [
        "== slurm/110_refiner_examples.sbatch",
        "== slurm/130_refiner_warmstart.sbatch",
        "== slurm/160_refiner_predict.sbatch",
    ]
    examples = json.loads((refiner_dir / "examples" / "manifest.json").read_text())
    assert examples["config"]["fraction"] == 1.0
    assert not (refiner_dir / "critic").exists() and not (refiner_dir / "refiner").exists()
    predict = json.loads((refiner_dir / "predict-none" / "manifest.json").read_text())
    assert predict["config"]["critic"] == "none" and predict["config"]["generator"] == str(
        refiner_dir / "warmstart" / "final"
    )
    metrics = json.loads((refiner_dir / "predict-none" / "metrics.json").read_text())
    assert [row["turn"] for row in metrics["turns"]] == [0] and "paired" not in metrics
