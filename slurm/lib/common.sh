# Sourced by every slurm/*.sbatch file. Works under sbatch and under plain bash.
# Submit from the repository root (sbatch copies the script elsewhere; SLURM_SUBMIT_DIR is the root).
set -Eeuo pipefail   # -E: the ERR trap below also fires inside functions
REPO_DIR="${REPO_DIR:-${SLURM_SUBMIT_DIR:-$(pwd)}}"
cd "$REPO_DIR"
[[ -f sampling/__init__.py ]] || { echo "run from the repository root (REPO_DIR=$REPO_DIR)" >&2; exit 2; }
PYTHON="${PYTHON:-$REPO_DIR/.venv/bin/python}"
RUN_DIR="${RUN_DIR:-runs/rationalyst}"       # every stage's output lives under here
CONFIG_DIR="${CONFIG_DIR-configs/paper}"     # the stage's defaults: $CONFIG_DIR/<stage>.yaml ("" for none)
LOG_DIR="${LOG_DIR:-logs}"                   # vLLM server logs (job logs: sbatch --output, see pipeline.sh)
mkdir -p "$RUN_DIR" "$LOG_DIR"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-0}" TOKENIZERS_PARALLELISM=false

log() { echo "[$(date '+%F %T')] ${SLURM_JOB_NAME:-$(basename "$0")} job ${SLURM_JOB_ID:-local} task ${SLURM_ARRAY_TASK_ID:--}: $*"; }
# the last line of a failed job's log names the stage and the failing command (its error is just above)
trap 'log "FAILED (exit $?): $BASH_COMMAND"' ERR

# run_stage MODULE ARGS...: the stage with its recipe, then ARGS (paths, and options whose environment
# variable is set), then <STAGE>_ARGS (e.g. SCORE_RATIONALES_ARGS) and EXTRA_ARGS, so the user wins.
# STAGE_RECIPE names another recipe (e.g. inference-math.yaml), STAGE_NAME another <STAGE>_ARGS
# (e.g. refiner_critic: training.finetune with REFINER_CRITIC_ARGS rather than FINETUNE_ARGS).
run_stage() {
  local module=$1; shift
  local leaf=${module##*.} recipe=()
  local file="${STAGE_RECIPE:-$CONFIG_DIR/$leaf.yaml}"
  if [[ -n "$CONFIG_DIR" && -f "$file" ]]; then recipe=(--config "$file"); fi
  local name="${STAGE_NAME:-$leaf}"
  local per_stage_var="${name^^}_ARGS"
  local extra="${!per_stage_var:-} ${EXTRA_ARGS:-}"
  log "python -m $module ${recipe[*]} $* $extra"
  # shellcheck disable=SC2086
  "$PYTHON" -m "$module" "${recipe[@]}" "$@" $extra
}

# opt FLAG VALUE: "FLAG VALUE" when VALUE is set, nothing otherwise (the recipe's value stands).
opt() { if [[ -n "${2:-}" ]]; then printf '%s\n%s\n' "$1" "$2"; fi; }

# recipe_value STAGE KEY [OVERRIDE]: OVERRIDE if set, else KEY from $CONFIG_DIR/STAGE.yaml, else empty.
recipe_value() {
  if [[ -n "${3:-}" ]]; then echo "$3"; return; fi
  CONFIG_DIR="$CONFIG_DIR" "$PYTHON" -m common.slurm recipe-value "$1" "$2"
}
