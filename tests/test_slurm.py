"""common/slurm.py: the inference array's mapping and the recipe look-ups that the sbatch files use."""

import subprocess
import sys

import pytest

from common.slurm import inference_plan, recipe_value
from tests.conftest import REPO


def test_array_task_maps_to_benchmark_heuristic_and_shard(tmp_path):
    (tmp_path / "inference.yaml").write_text("dataset: gsm8k\nbackend: openai\nmodel: agent\n")
    (tmp_path / "inference-math.yaml").write_text("dataset: math\nrationale_model: rm\n")
    env = {
        "CONFIG_DIR": str(tmp_path),
        "RUN_DIR": "r",
        "BENCHMARKS": "math,arc",
        "HEURISTICS": "rationalyst,random",
        "INFERENCE_SHARDS": "2",
    }
    header, rows = inference_plan(env)
    assert len(rows) == 8 and header == ("", "", "rm", "true")  # the first task's recipe: inference-math
    assert rows[0] == ("inference-math", "rationalyst", "", "r/inference/math-rationalyst", "0", "2")
    assert rows[3] == ("inference-math", "random", "", "r/inference/math-random", "1", "2")
    assert rows[5] == ("inference", "rationalyst", "arc", "r/inference/arc-rationalyst", "1", "2")
    header, [row] = inference_plan({**env, "SLURM_ARRAY_TASK_ID": "7"})
    assert row == ("inference", "random", "arc", "r/inference/arc-random", "1", "2") and header[:2] == (
        "openai",
        "agent",
    )
    header, rows = inference_plan({"CONFIG_DIR": str(tmp_path), "HEURISTICS": "random"})
    assert rows == [("inference", "random", "", "runs/rationalyst/inference/gsm8k-random", "0", "1")]
    assert header[3] == "false"
    assert (
        recipe_value("inference", "model", str(tmp_path)) == "agent" and recipe_value("nope", "x", str(tmp_path)) == ""
    )


def test_empty_fields_survive_the_shell(tmp_path):
    (tmp_path / "inference.yaml").write_text("dataset: gsm8k\n")
    script = (
        'plan=$("$PY" -m common.slurm inference-plan); mapfile -t t < <(tail -n +2 <<< "$plan"); '
        "IFS=$'\\x1f' read -r recipe heuristic dataset output shard shards <<< \"${t[0]}\"; "
        'echo "[$dataset][$shards][$output]"'
    )
    out = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PY": sys.executable, "CONFIG_DIR": str(tmp_path), "HEURISTICS": "random"},
    )
    assert out.stdout.strip() == "[][1][runs/rationalyst/inference/gsm8k-random]"


def test_two_servers_share_one_gpu_only_when_it_leaves_a_kv_cache():
    from common.slurm import gpu_share

    assert gpu_share(81920) == gpu_share(0) == "--gpu-memory-utilization 0.45"  # 80 GB; unknown (no nvidia-smi)
    for small in (40960, 49152):  # 40 and 48 GB: 2 and 6 GB of KV cache each
        with pytest.raises(SystemExit, match="request two GPUs"):
            gpu_share(small)


def test_inference_job_on_one_small_gpu_is_refused_before_starting_servers(tmp_path):
    """70_inference.sbatch asks nvidia-smi for the card's memory (a stand-in here reports 40 GB)."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 40960\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", CUDA_VISIBLE_DEVICES="0", PYTHON=sys.executable)
    env.update(RUN_DIR=str(tmp_path / "run"), LOG_DIR=str(tmp_path / "logs"), VLLM_PYTHON="/nonexistent")
    env.pop("OPENAI_BASE_URL", None)
    done = subprocess.run(["bash", "slurm/70_inference.sbatch"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "request two GPUs" in done.stderr, done.stdout + done.stderr
