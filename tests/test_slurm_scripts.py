"""The sbatch files run unchanged under plain bash (no Slurm): the whole RATIONALYST data chain on tiny
models. Submitting them to a real single-node Slurm is the Slurm issue's test tier."""

import json
import os
import subprocess

import pytest

from tests.conftest import REPO
from tests.test_prefilter import mixed_corpus


@pytest.mark.slow
def test_rationalyst_data_chain_under_plain_bash(tiny_llama_dir, tmp_path):
    mixed_corpus(tmp_path / "corpus.jsonl", n_prose=6, n_reasoning=4)
    run_dir = tmp_path / "run"
    base = dict(os.environ, RUN_DIR=str(run_dir), HF_HUB_OFFLINE="1", PROCSUP_CACHE=str(tmp_path / "cache"),
                PYTHON=str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").exists() else "python")
    steps = [
        ("10_prefilter.sbatch", {"CORPUS": str(tmp_path / "corpus.jsonl"), "EMBEDDER": "all-minilm-l6-v2",
                                 "REFERENCE_SETS": "gsm_symbolic", "EXTRA_ARGS": "--reference-limit 50 --device cpu"}),
        ("20_extract_rationales.sbatch", {"BACKEND": "hf", "MODEL": tiny_llama_dir, "FAMILY": "datasets",
                                          "DATASETS": "gsm_symbolic", "EXTRA_ARGS": "--limit-per-dataset 2 --mode "
                                          "per_step --max-steps 3 --step-max-tokens 4 --device cpu"}),
        ("20_extract_rationales.sbatch", {"BACKEND": "hf", "MODEL": tiny_llama_dir, "FAMILY": "web",
                                          "EXTRA_ARGS": "--mode per_step --max-steps 2 --step-max-tokens 4 "
                                                        "--device cpu"}),
        ("30_parse_rationales.sbatch", {}),
        ("40_score_rationales.sbatch", {"BACKEND": "hf", "MODEL": tiny_llama_dir, "EXTRA_ARGS": "--device cpu"}),
        ("50_filter_rationales.sbatch", {"TAU": "-1000", "EXTRA_ARGS": "--dev-fraction 0.3"}),
        ("60_finetune.sbatch", {"MODEL": tiny_llama_dir, "EXTRA_ARGS": "--epochs 1 --batch-size 2 --grad-accum 1"}),
    ]
    for script, env in steps:
        done = subprocess.run(["bash", f"slurm/{script}"], cwd=REPO, env={**base, **env}, capture_output=True,
                              text=True)
        assert done.returncode == 0, f"{script}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        assert "job local" in done.stdout                       # ${SLURM_JOB_ID:-local}
    counts = {d: json.loads((run_dir / d / "manifest.json").read_text())["counts"]
              for d in ("prefilter", "extract_datasets", "extract_web", "parsed", "scored", "filtered")}
    assert counts["extract_datasets"]["out"] == 2 and counts["parsed"]["out"] == counts["scored"]["out"] > 0
    assert counts["filtered"]["kept"] == counts["scored"]["out"]          # tau -1000 keeps everything
    assert (run_dir / "rationalyst_model" / "final" / "config.json").exists()
    # a rerun resumes: every finished shard is skipped
    again = subprocess.run(["bash", "slurm/40_score_rationales.sbatch"], cwd=REPO, capture_output=True, text=True,
                           env={**base, "BACKEND": "hf", "MODEL": tiny_llama_dir, "EXTRA_ARGS": "--device cpu"})
    assert again.returncode == 0 and "is finished; skipping" in again.stderr
