"""The sbatch files and slurm/pipeline.sh --local run unchanged without Slurm: the whole RATIONALYST chain
on tiny models, with the demo recipes. Submitting to a real single-node Slurm is the Slurm issue's tier."""

import json
import os
import subprocess

import pytest

from tests.conftest import REPO
from tests.test_prefilter import mixed_corpus


@pytest.mark.slow
def test_rationalyst_chain_with_pipeline_local(tiny_llama_dir, tmp_path):
    mixed_corpus(tmp_path / "corpus.jsonl", n_prose=6, n_reasoning=4)
    run_dir = tmp_path / "run"
    env = dict(os.environ, RUN_DIR=str(run_dir), HF_HUB_OFFLINE="1", PROCSUP_CACHE=str(tmp_path / "cache"),
               CONFIG_DIR="configs/demo", CORPUS=str(tmp_path / "corpus.jsonl"), MODEL=tiny_llama_dir,
               DATASETS="gsm_symbolic", PREFILTER_ARRAY="0-1", PREFILTER_ARGS="--reference-limit 50",
               EXTRACT_ARRAY="0-0", SCORE_ARRAY="0-1",
               EXTRACT_RATIONALES_ARGS="--limit-per-dataset 2 --max-steps 3 --step-max-tokens 4",
               FILTER_RATIONALES_ARGS="--tau -1000 --dev-fraction 0.3",
               FINETUNE_ARGS="--epochs 1 --batch-size 2 --grad-accum 1")
    if (REPO / ".venv").exists():
        env["PYTHON"] = str(REPO / ".venv" / "bin" / "python")
    done = subprocess.run(["bash", "slurm/pipeline.sh", "rationalyst", "--local"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "job local task 1" in done.stdout                          # the prefilter array ran as 2 tasks
    counts = {d: json.loads((run_dir / d / "manifest.json").read_text())["counts"]
              for d in ("prefilter", "extract_datasets", "extract_web", "parsed", "scored", "filtered")}
    prefilter = json.loads((run_dir / "prefilter" / "manifest.json").read_text())
    assert prefilter["shards_finished"] == 2 and prefilter["config"]["embedder"] == "all-minilm-l6-v2"  # recipe
    assert counts["extract_datasets"]["out"] == 2 and counts["parsed"]["out"] == counts["scored"]["out"] > 0
    assert counts["filtered"]["kept"] == counts["scored"]["out"]          # tau -1000 keeps everything
    assert (run_dir / "rationalyst_model" / "final" / "config.json").exists()
    # a rerun of an array task resumes: its finished shard is skipped before any model is loaded;
    # the same stage outside the array (1 shard, not 2) is refused rather than mixed in
    task = dict(env, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_TASK_COUNT="2")
    again = subprocess.run(["bash", "slurm/40_score_rationales.sbatch"], cwd=REPO, env=task, capture_output=True,
                           text=True)
    assert again.returncode == 0 and "part-00001-of-00002.jsonl is finished; skipping" in again.stderr
    other = subprocess.run(["bash", "slurm/40_score_rationales.sbatch"], cwd=REPO, env=env, capture_output=True,
                           text=True)
    assert other.returncode != 0 and "num_shards" in other.stdout + other.stderr
