# vLLM's OpenAI-compatible servers inside a job: started by common.llm.vllm_server (the one place that runs
# vLLM), their URLs exported, all stopped when the job's shell exits.
#
#   vllm_start MODEL [SERVED_NAME] [URL_VAR]
#
# MODEL is a registry name, Hub id or path, served as SERVED_NAME (default MODEL). One server per group of
# VLLM_GPUS_PER_SERVER GPUs (tensor parallel within a group) among VLLM_GPUS (default: the job's
# CUDA_VISIBLE_DEVICES, i.e. one server per GPU: RATIONALYST ran one per GPU). VLLM_NUM_SERVERS caps the
# count; with no GPU (a CPU machine) it is the count itself (default 1). Ports come from this job's own
# block (20000 + 16 x (job id mod 2000)), or from PROCSUP_VLLM_PORT upwards. URL_VAR (default
# OPENAI_BASE_URL) is exported as the comma-separated URL list, which the openai backend uses in rotation
# (common/llm/openai.py). Does nothing when URL_VAR is already set (servers you run elsewhere). Several
# calls in one job start several models. A watchdog checks the servers every VLLM_WATCH_INTERVAL seconds
# (5): when one dies, it prints the tail of its log and stops the job's stage (SIGTERM to the job shell's
# children), so the job fails at once instead of waiting on a dead port; the stage's journal keeps what is
# done. Knobs: VLLM_PYTHON (an interpreter with vllm), VLLM_ARGS (extra server options),
# VLLM_STARTUP_TIMEOUT (s), VLLM_MAX_MODEL_LEN (8192: the extraction recipe's prompt + 3000 new tokens;
# 0 = the model's own).
VLLM_PIDS=()
VLLM_WATCHDOGS=()
VLLM_NEXT_PORT="${PROCSUP_VLLM_PORT:-}"

vllm_start() {
  local model=$1 served=${2:-$1} var=${3:-OPENAI_BASE_URL}
  if [[ -n "${!var:-}" ]]; then log "$var=${!var}: using those servers"; return; fi
  local out rc=0 urls=() line pids=() logs=()
  trap vllm_stop EXIT
  # shellcheck disable=SC2086
  out=$("$PYTHON" -m common.llm.vllm_server up --model "$model" --served-name "$served" \
      --gpus "${VLLM_GPUS-${CUDA_VISIBLE_DEVICES:-}}" --gpus-per-server "${VLLM_GPUS_PER_SERVER:-1}" \
      --num-servers "${VLLM_NUM_SERVERS:-0}" --port-base "$VLLM_NEXT_PORT" --log-dir "$LOG_DIR" \
      --tag "${SLURM_JOB_ID:-local}-${SLURM_ARRAY_TASK_ID:-0}" --startup-timeout "${VLLM_STARTUP_TIMEOUT:-900}" \
      --max-model-len "${VLLM_MAX_MODEL_LEN:-8192}" \
      --python "${VLLM_PYTHON:-$REPO_DIR/.venv-vllm/bin/python}" -- ${VLLM_ARGS:-}) || rc=$?
  while read -r kind value rest; do
    case "$kind" in
      URL) urls+=("$value"); line=${value%/v1}; VLLM_NEXT_PORT=$(( ${line##*:} + 1 )) ;;   # the next call goes on
      PID) VLLM_PIDS+=("$value"); pids+=("$value") ;;
      LOG) logs+=("$value") ;;
      EXITED) log "vLLM on port $value exited; last lines of its log ($rest) are above" ;;
      TIMEOUT) log "vLLM: $value $rest" ;;
    esac
  done <<< "$out"
  (( rc == 0 )) || exit 1
  export "$var=$(IFS=,; echo "${urls[*]}")"
  log "vLLM ready: $var=${!var}"
  vllm_watch "$$" "${#pids[@]}" "${pids[@]}" "${logs[@]}" &
  VLLM_WATCHDOGS+=("$!")
}

# vllm_watch JOB_SHELL N PID... LOG...: in the background; when a server exits, its log tail and the stage stopped
vllm_watch() {
  local job=$1 n=$2; shift 2
  local pids=("${@:1:n}") logs=("${@:n+1}") i child
  while sleep "${VLLM_WATCH_INTERVAL:-5}" </dev/null >/dev/null 2>&1; do
    for i in "${!pids[@]}"; do
      kill -0 "${pids[$i]}" 2>/dev/null && continue
      log "vLLM server (pid ${pids[$i]}) died during the stage; the last lines of its log ${logs[$i]:-}:"
      tail -n "${VLLM_LOG_TAIL:-30}" "${logs[$i]:-/dev/null}" 2>/dev/null || true
      log "stopping the stage: rerun the job to retry the inputs not done"
      for child in $(pgrep -P "$job"); do [[ "$child" == "$BASHPID" ]] || kill -TERM "$child" 2>/dev/null || true; done
      exit 1
    done
  done
}

vllm_stop() {  # each server leads its own process group: the engine's workers go with it
  local pid
  for pid in "${VLLM_WATCHDOGS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  VLLM_WATCHDOGS=()
  for pid in "${VLLM_PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${VLLM_PIDS[@]}"; do
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  VLLM_PIDS=()
}
