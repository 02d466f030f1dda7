#!/bin/bash
# Submit a whole pipeline as a Slurm job chain, or run it here, one stage after another.
#
#   slurm/pipeline.sh rationalyst|refiner|refiner_supervised|sft|all [--local]
#
# refiner_supervised is REFINER's supervised baseline (refiner.md 8.2, "- critic in training" = UQA-base):
# the generator fine-tuned on all of the training data (x -> z, no refinement records, no critic), predicted
# alone (CRITICS=none), into runs/refiner-TASK-supervised.
# sft is RATIONALYST's SFT baseline (rationalyst.md 9): the agent fine-tuned on question -> solution of
# SFT_DATASET's training split (gsm8k), then answering zero-shot in one greedy solution (HEURISTICS=cot,
# SHOTS=0), into RUN_DIR=runs/sft; compare with model_inference.evaluate --runs (docs/paper-tables.md).
#
# Submission: `sbatch --parsable`, each stage `--dependency=afterok:<previous>` and
# `--kill-on-invalid-dep=yes` (a failed stage cancels its dependents instead of leaving them
# pending forever). Arrays for the sharded stages; override a stage's array with e.g.
# PREFILTER_ARRAY=0-14. --local runs the same sbatch files with bash, array indices in a loop.
# Resubmitting resumes: finished shards are skipped, unfinished ones continue.
# Knobs: RUN_DIR (outputs), CONFIG_DIR (recipes; configs/paper by default), LOG_DIR (job logs; logs),
# FAMILIES (web,datasets), BENCHMARKS (the inference recipe's), HEURISTICS (rationalyst,random),
# INFERENCE_SHARDS (1): the inference array is their product; SCORERS (the step scorers measured beside
# inference: rationalyst,likelihood,random); CRITICS (critic,oracle); SBATCH_ARGS
# (extra sbatch options for every job, e.g. "--partition=gpu --account=me") and <STAGE>_SBATCH_ARGS
# for one stage (e.g. EXTRACT_RATIONALES_SBATCH_ARGS="--gres=gpu:4"), and every knob the sbatch files
# read (MODEL, BACKEND, CORPUS, <STAGE>_ARGS, ...).
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
if [[ "$pipeline" == sft ]]; then export RUN_DIR="${RUN_DIR:-runs/sft}" HEURISTICS="${HEURISTICS:-cot}"; fi
export RUN_DIR="${RUN_DIR:-runs/rationalyst}" CONFIG_DIR="${CONFIG_DIR-configs/paper}" LOG_DIR="${LOG_DIR:-logs}"
if [[ "$pipeline" == refiner_supervised ]]; then
  export REFINER_DIR="${REFINER_DIR:-runs/refiner-${TASK:-mwp}-supervised}" WARMSTART_FRACTION=1 CRITICS=none \
      REFINER_GENERATOR=warmstart/final
fi
export REFINER_DIR="${REFINER_DIR:-runs/refiner-${TASK:-mwp}}"     # (slurm/lib/refiner.sh has the same default)
mkdir -p "$LOG_DIR"

# A pipeline is a list of stages: "FILE [VAR=VALUE...]". A stage written "+FILE ..." runs side by
# side with the one before it (same dependencies); the next stage waits for both.
rationalyst_stages() {
  local fams fam first=true
  IFS=, read -r -a fams <<< "${FAMILIES:-web,datasets}"
  if [[ ",${FAMILIES:-web,datasets}," == *,web,* ]]; then echo slurm/10_prefilter.sbatch; fi  # only web reads it
  for fam in "${fams[@]}"; do
    if $first; then echo "slurm/20_extract_rationales.sbatch FAMILY=$fam"; first=false
    else echo "+slurm/20_extract_rationales.sbatch FAMILY=$fam"; fi
  done
  printf '%s\n' slurm/30_parse_rationales.sbatch slurm/40_score_rationales.sbatch \
      slurm/50_filter_rationales.sbatch slurm/60_finetune.sbatch slurm/70_inference.sbatch \
      +slurm/90_verify_steps.sbatch slurm/80_evaluate.sbatch slurm/95_evaluate_steps.sbatch
}
refiner_stages() {   # critic data and warm-start records, then the two seq2seq models, REFINER training, prediction
  printf '%s\n' slurm/110_refiner_examples.sbatch +slurm/120_critic_data.sbatch slurm/130_refiner_warmstart.sbatch \
      +slurm/140_refiner_critic.sbatch slurm/150_train_refiner.sbatch slurm/160_refiner_predict.sbatch
}
sft_stages() {   # the SFT model's records, its fine-tune, zero-shot chain of thought with it, the report
  printf '%s\n' slurm/55_task_examples.sbatch \
      "slurm/60_finetune.sbatch FINETUNE_INPUT=task_examples FINETUNE_OUTPUT=sft_model FINETUNE_RECIPE=finetune-sft" \
      "slurm/70_inference.sbatch MODEL=$RUN_DIR/sft_model/final SHOTS=0" slurm/80_evaluate.sbatch
}
refiner_supervised_stages() {
  printf '%s\n' slurm/110_refiner_examples.sbatch slurm/130_refiner_warmstart.sbatch slurm/160_refiner_predict.sbatch
}

case "$pipeline" in
  rationalyst) pipelines=(rationalyst) ;;
  refiner) pipelines=(refiner) ;;
  refiner_supervised) pipelines=(refiner_supervised) ;;
  sft) pipelines=(sft) ;;
  all) pipelines=(rationalyst refiner) ;;
  *) echo "usage: slurm/pipeline.sh rationalyst|refiner|refiner_supervised|sft|all [--local]" >&2; exit 2 ;;
esac

IFS=, read -r -a heuristics <<< "${HEURISTICS:-rationalyst,random}"
IFS=, read -r -a benchmarks <<< "${BENCHMARKS:-one}"
export INFERENCE_ARRAY="${INFERENCE_ARRAY:-0-$(( ${#benchmarks[@]} * ${#heuristics[@]} * ${INFERENCE_SHARDS:-1} - 1 ))}"
IFS=, read -r -a scorers <<< "${SCORERS:-rationalyst,likelihood,random}"
export VERIFY_STEPS_ARRAY="${VERIFY_STEPS_ARRAY:-0-$(( ${#scorers[@]} - 1 ))}"
IFS=, read -r -a critics <<< "${CRITICS:-critic,oracle}"
export REFINER_PREDICT_ARRAY="${REFINER_PREDICT_ARRAY:-0-$(( ${#critics[@]} - 1 ))}"

array_of() {  # the stage's array: <STAGE_NAME>_ARRAY or <FIRST_WORD>_ARRAY (SCORE_ARRAY), else its #SBATCH --array
  local file=$1 name var; name=$(basename "$file" .sbatch); name=${name#*_}
  for var in "${name^^}_ARRAY" "${name%%_*}_ARRAY"; do
    var=${var^^}
    if [[ -n "${!var:-}" ]]; then echo "${!var}"; return; fi
  done
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
  local name; name=$(basename "$file" .sbatch); name=${name#*_}; local own="${name^^}_SBATCH_ARGS"
  local exports="ALL,RUN_DIR=$RUN_DIR,CONFIG_DIR=$CONFIG_DIR,LOG_DIR=$LOG_DIR" log="$LOG_DIR/%x-%j.out"
  if [[ -n "$array" ]]; then log="$LOG_DIR/%x-%A_%a.out"; fi
  for kv in "$@"; do exports+=",$kv"; done
  # shellcheck disable=SC2086
  sbatch --parsable --kill-on-invalid-dep=yes ${dep:+--dependency=afterok:$dep} ${array:+--array=$array} \
      --output="$log" --export="$exports" ${SBATCH_ARGS:-} ${!own:-} "$file" | cut -d';' -f1
}

ids=()
for p in "${pipelines[@]}"; do
  mapfile -t stages < <("${p}_stages")
  prev="" group_deps="" group_ids=""
  for stage in "${stages[@]}"; do
    read -r -a parts <<< "${stage#+}"
    if $local_run; then
      echo "== ${parts[*]}"
      run_local "${parts[@]}"
      continue
    fi
    if [[ "$stage" == +* ]]; then deps="$group_deps"; else deps="$prev"; group_deps="$prev"; group_ids=""; fi
    id=$(submit "$deps" "${parts[@]}")
    ids+=("$id")
    group_ids="${group_ids:+$group_ids:}$id"
    prev="$group_ids"
    echo "submitted ${parts[*]} as job $id${deps:+ (after $deps)}"
  done
done
outputs=""
for p in "${pipelines[@]}"; do
  if [[ $p == rationalyst || $p == sft ]]; then outputs+=" $RUN_DIR"; else outputs+=" $REFINER_DIR"; fi
done
if $local_run; then echo "done: outputs in$outputs"; exit 0; fi
echo "outputs:$outputs   logs: $LOG_DIR/<stage>-<job>[_<task>].out   watch: squeue -j $(IFS=,; echo "${ids[*]}")"
echo "cancel all: scancel ${ids[*]}"
