#!/bin/bash
# Submit a whole pipeline as a Slurm job chain, or run it here, one stage after another.
#
#   slurm/pipeline.sh rationalyst [--local]
#
# Submission: `sbatch --parsable`, each stage `--dependency=afterok:<previous>` and
# `--kill-on-invalid-dep=yes` (a failed stage cancels its dependents instead of leaving them
# pending forever). Arrays for the sharded stages; override a stage's array with e.g.
# PREFILTER_ARRAY=0-15. --local runs the same sbatch files with bash, array indices in a loop.
# Resubmitting resumes: finished shards are skipped, unfinished ones continue.
# Knobs: RUN_DIR (outputs), CONFIG_DIR (recipes; configs/paper by default), FAMILIES (web,datasets),
# and every knob the sbatch files read (MODEL, BACKEND, CORPUS, <STAGE>_ARGS, ...).
# REFINER's chain comes with its stages.
set -euo pipefail
cd "$(dirname "$0")/.."
pipeline="${1:-}"; shift || true
local_run=false
for arg in "$@"; do
  case "$arg" in
    --local) local_run=true ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
case "$pipeline" in
  rationalyst|all) ;;
  refiner) echo "the REFINER chain is not there yet (its stages are being built)" >&2; exit 2 ;;
  *) echo "usage: slurm/pipeline.sh rationalyst|all [--local]" >&2; exit 2 ;;
esac
export RUN_DIR="${RUN_DIR:-runs/rationalyst}" CONFIG_DIR="${CONFIG_DIR-configs/paper}"
mkdir -p logs "$RUN_DIR"
IFS=, read -r -a families <<< "${FAMILIES:-web,datasets}"

array_of() {  # the stage's array: <NAME>_ARRAY, else its #SBATCH --array, else none
  local file=$1 name; name=$(basename "$file" .sbatch); name=${name#*_}; name=${name%%_*}
  local var="${name^^}_ARRAY"
  if [[ -n "${!var:-}" ]]; then echo "${!var}"; return; fi
  sed -n 's/^#SBATCH --array=\([0-9-]*\).*/\1/p' "$file" | head -1
}

run_local() {  # FILE [VAR=VALUE...]
  local file=$1; shift
  local array; array=$(array_of "$file")
  if [[ -z "$array" ]]; then env "$@" bash "$file"; return; fi
  local first=${array%-*} last=${array#*-}
  for ((i = first; i <= last; i++)); do
    env "$@" SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_MIN=$first SLURM_ARRAY_TASK_COUNT=$((last - first + 1)) bash "$file"
  done
}

submit() {  # DEPENDENCY FILE [VAR=VALUE...]: prints the job id
  local dep=$1 file=$2; shift 2
  local array; array=$(array_of "$file")
  local exports="ALL,RUN_DIR=$RUN_DIR,CONFIG_DIR=$CONFIG_DIR"
  for kv in "$@"; do exports+=",$kv"; done
  sbatch --parsable --kill-on-invalid-dep=yes ${dep:+--dependency=afterok:$dep} ${array:+--array=$array} \
      --export="$exports" "$file" | cut -d';' -f1
}

stages=(slurm/10_prefilter.sbatch)
for fam in "${families[@]}"; do stages+=("slurm/20_extract_rationales.sbatch FAMILY=$fam"); done
stages+=(slurm/30_parse_rationales.sbatch slurm/40_score_rationales.sbatch slurm/50_filter_rationales.sbatch
         slurm/60_finetune.sbatch)

if $local_run; then
  for stage in "${stages[@]}"; do
    read -r -a parts <<< "$stage"
    echo "== ${parts[*]}"
    run_local "${parts[@]}"
  done
  echo "done: outputs in $RUN_DIR"
  exit 0
fi

prev=""
ids=()
for stage in "${stages[@]}"; do
  read -r -a parts <<< "$stage"
  deps="$prev"
  if [[ "${parts[0]}" == *20_extract* ]]; then deps="$prefilter_id"; fi   # extraction families run side by side
  id=$(submit "$deps" "${parts[@]}")
  ids+=("$id")
  echo "submitted ${parts[*]} as job $id${deps:+ (after $deps)}"
  case "${parts[0]}" in
    *10_prefilter*) prefilter_id=$id; prev=$id ;;
    *20_extract*) extract_ids="${extract_ids:+$extract_ids:}$id"; prev="$extract_ids" ;;
    *) prev=$id ;;
  esac
done
echo "outputs: $RUN_DIR   logs: logs/<stage>-<job>_<task>.out   cancel all: scancel ${ids[*]}"
