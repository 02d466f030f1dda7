"""What the Slurm files need from the recipes, computed here rather than in shell (slurm/lib/common.sh and
slurm/70_inference.sbatch call it).

    python -m common.slurm recipe-value STAGE KEY      the KEY of $CONFIG_DIR/STAGE.yaml, or nothing
    python -m common.slurm inference-plan              the inference array: one line per task of this job
    python -m common.slurm gpu-share MEMORY_MIB        vLLM options for two servers on one GPU, or a refusal

inference-plan reads BENCHMARKS (default: the recipe's data set), HEURISTICS (default rationalyst,random),
INFERENCE_SHARDS (1), DATASET, BACKEND, MODEL, CONFIG_DIR, RUN_DIR and SLURM_ARRAY_TASK_ID (unset: every
task). Array task t is benchmark t // (heuristics x shards), heuristic (t // shards) % heuristics, shard
t % shards. A benchmark NAME uses $CONFIG_DIR/inference-NAME.yaml when it exists, else inference.yaml with
--dataset NAME. It prints a header line, then one line per task, fields separated by \\x1f (empty fields survive):
    backend  model  rationale_model_name  uses_rationale(true|false)
    recipe   heuristic  dataset  output  shard  num_shards
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml


def recipe_value(stage: str, key: str, config_dir: str | None = None) -> str:
    config_dir = os.environ.get("CONFIG_DIR", "configs/paper") if config_dir is None else config_dir
    path = Path(config_dir) / f"{stage}.yaml"
    if not config_dir or not path.is_file():
        return ""
    value = (yaml.safe_load(path.read_text()) or {}).get(key, "")
    return "" if value is None else str(value)


SHARED_GPU_FRACTION = 0.45  # two servers (agent, rationale model) on one GPU
MIN_KV_CACHE_GB = 8.0  # per server: about 64,000 tokens of Llama-3-8B's KV cache (128 KB a token)


def gpu_share(memory_mib: int, model_gb: float = 16.0) -> str:
    """vLLM options for the agent and the rationale model sharing one GPU: each gets 0.45 of it, which must
    leave room for a KV cache after its weights (8B in bf16: 16 GB). On a 40 to 48 GB card it would leave 2 to
    6 GB, too little to batch: refused, asking for two GPUs. Unknown memory (0: no nvidia-smi) is not refused."""
    if memory_mib:
        kv_gb = SHARED_GPU_FRACTION * memory_mib / 1024 - model_gb
        if kv_gb < MIN_KV_CACHE_GB:
            raise SystemExit(
                f"two vLLM servers on one {memory_mib / 1024:.0f} GB GPU leave {kv_gb:.0f} GB of KV cache each "
                f"(less than {MIN_KV_CACHE_GB:.0f} GB): request two GPUs (INFERENCE_SBATCH_ARGS=--gres=gpu:2, one "
                "model on each) or serve the rationale model elsewhere (RATIONALE_BASE_URL)"
            )
    return f"--gpu-memory-utilization {SHARED_GPU_FRACTION}"


def inference_plan(env: dict[str, str]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    config_dir = env.get("CONFIG_DIR", "configs/paper")
    benchmarks = [b.strip() for b in env.get("BENCHMARKS", "").split(",") if b.strip()] or [""]
    heuristics = [h.strip() for h in env.get("HEURISTICS", "rationalyst,random").split(",") if h.strip()]
    shards = int(env.get("INFERENCE_SHARDS") or 1)
    n_tasks = len(benchmarks) * len(heuristics) * shards
    task_id = env.get("SLURM_ARRAY_TASK_ID")
    tasks = [int(task_id)] if task_id else list(range(n_tasks))
    for t in tasks:
        if not 0 <= t < n_tasks:
            raise SystemExit(f"array task {t} but only {n_tasks} (BENCHMARKS x HEURISTICS x INFERENCE_SHARDS)")

    def recipe_of(benchmark: str) -> str:
        named = f"inference-{benchmark}"
        return named if benchmark and config_dir and (Path(config_dir) / f"{named}.yaml").is_file() else "inference"

    rows = []
    for t in tasks:
        benchmark = benchmarks[t // (len(heuristics) * shards)]
        heuristic = heuristics[(t // shards) % len(heuristics)]
        recipe = recipe_of(benchmark)
        dataset = env.get("DATASET") or (benchmark if benchmark and recipe == "inference" else "")
        name = dataset or recipe_value(recipe, "dataset", config_dir)
        output = f"{env.get('RUN_DIR', 'runs/rationalyst')}/inference/{name.split('=')[0]}-{heuristic}"
        rows.append((recipe, heuristic, dataset, output, str(t % shards), str(shards)))
    first = rows[0][0]
    backend = env.get("BACKEND") or recipe_value(first, "backend", config_dir)
    model = env.get("MODEL") or recipe_value(first, "model", config_dir)
    rationale_name = recipe_value(first, "rationale_model", config_dir) or "rationalyst"
    uses_rationale = any(r[1].startswith("rationalyst") for r in rows)
    return (backend, model, rationale_name, str(uses_rationale).lower()), rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 3 and argv[0] == "recipe-value":
        print(recipe_value(argv[1], argv[2]))
        return 0
    if len(argv) == 2 and argv[0] == "gpu-share":
        print(gpu_share(int(argv[1] or 0)))
        return 0
    if argv == ["inference-plan"]:
        header, rows = inference_plan(dict(os.environ))
        for row in [header, *rows]:
            print("\x1f".join(row))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
