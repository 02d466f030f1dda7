# Sourced by every slurm/*.sbatch file. Works under sbatch and under plain bash.
# Submit from the repository root (sbatch copies the script elsewhere; SLURM_SUBMIT_DIR is the root).
set -euo pipefail
REPO_DIR="${REPO_DIR:-${SLURM_SUBMIT_DIR:-$(pwd)}}"
cd "$REPO_DIR"
[[ -f sampling/__init__.py ]] || { echo "run from the repository root (REPO_DIR=$REPO_DIR)" >&2; exit 2; }
PYTHON="${PYTHON:-$REPO_DIR/.venv/bin/python}"
RUN_DIR="${RUN_DIR:-runs/rationalyst}"       # every stage's output lives under here
CONFIG_DIR="${CONFIG_DIR:-}"                 # e.g. configs/demo: uses $CONFIG_DIR/<stage>.yaml when present
mkdir -p "$RUN_DIR" logs
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-0}" TOKENIZERS_PARALLELISM=false

log() { echo "[$(date '+%F %T')] ${SLURM_JOB_NAME:-$(basename "$0")} job ${SLURM_JOB_ID:-local} task ${SLURM_ARRAY_TASK_ID:--}: $*"; }

# run_stage MODULE ARGS...: the stage with its recipe (if any) and the user's EXTRA_ARGS last.
run_stage() {
  local module=$1; shift
  local recipe=()
  if [[ -n "$CONFIG_DIR" && -f "$CONFIG_DIR/${module##*.}.yaml" ]]; then recipe=(--config "$CONFIG_DIR/${module##*.}.yaml"); fi
  log "python -m $module ${recipe[*]} $* ${EXTRA_ARGS:-}"
  # shellcheck disable=SC2086
  "$PYTHON" -m "$module" "${recipe[@]}" "$@" ${EXTRA_ARGS:-}
}
