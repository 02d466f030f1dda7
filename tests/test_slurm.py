"""common/slurm.py: the inference array's mapping and the recipe look-ups that the sbatch files use."""

import subprocess
import sys

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
