# vLLM's OpenAI-compatible servers inside a job: start, wait on /health, export the URLs, stop on exit.
#
#   vllm_start MODEL [SERVED_NAME] [URL_VAR]
#
# MODEL is a registry name, Hub id or path, served as SERVED_NAME (default MODEL). One server per
# group of VLLM_GPUS_PER_SERVER GPUs (tensor parallel within a group) among VLLM_GPUS (default: the
# job's CUDA_VISIBLE_DEVICES, i.e. one server per GPU: RATIONALYST ran one per GPU). VLLM_NUM_SERVERS
# caps the count; with no GPU (a CPU machine) it is the count itself (default 1). Each server gets a
# free port from VLLM_PORT upwards (default 20000 + job id mod 20000). URL_VAR (default
# OPENAI_BASE_URL) is exported as the comma-separated URL list, which the openai backend uses in
# rotation (common/llm/openai.py). Does nothing when URL_VAR is already set (servers you run elsewhere).
# Several calls in one job start several models; every server is stopped when the job's shell exits.
# Knobs: VLLM_PYTHON (an interpreter with vllm), VLLM_ARGS (extra server options), VLLM_STARTUP_TIMEOUT (s).
VLLM_PIDS=()
VLLM_NEXT_PORT=""

vllm_start() {
  local model=$1 served=${2:-$1} var=${3:-OPENAI_BASE_URL}
  if [[ -n "${!var:-}" ]]; then log "$var=${!var}: using those servers"; return; fi
  local python="${VLLM_PYTHON:-$REPO_DIR/.venv-vllm/bin/python}"
  local path; path=$("$PYTHON" -c "import sys; from common.models import resolve; print(resolve(sys.argv[1]))" "$model")
  local per=${VLLM_GPUS_PER_SERVER:-1} gpus=() groups=() i
  IFS=, read -r -a gpus <<< "${VLLM_GPUS-${CUDA_VISIBLE_DEVICES:-}}"
  if (( ${#gpus[@]} == 0 )); then
    for ((i = 0; i < ${VLLM_NUM_SERVERS:-1}; i++)); do groups+=(""); done      # CPU: no device to pin
  else
    for ((i = 0; i + per <= ${#gpus[@]}; i += per)); do
      groups+=("$(IFS=,; echo "${gpus[*]:i:per}")")
    done
    (( ${#groups[@]} > 0 )) || { log "VLLM_GPUS_PER_SERVER=$per but only ${#gpus[@]} GPU(s)"; exit 1; }
    groups=("${groups[@]:0:${VLLM_NUM_SERVERS:-${#groups[@]}}}")
  fi
  local tp=(); (( per > 1 )) && tp=(--tensor-parallel-size "$per")
  VLLM_NEXT_PORT=${VLLM_NEXT_PORT:-${VLLM_PORT:-$((20000 + (${SLURM_JOB_ID:-$$} % 20000)))}}
  local urls=() ports=() pids=() port logfile group
  for group in "${groups[@]}"; do
    port=$("$PYTHON" -c "
import socket, sys
p = int(sys.argv[1])
while True:
    try:
        with socket.socket() as s:
            s.bind(('127.0.0.1', p)); break
    except OSError:
        p += 1
print(p)" "$VLLM_NEXT_PORT")
    VLLM_NEXT_PORT=$((port + 1))
    logfile="$LOG_DIR/vllm-${SLURM_JOB_ID:-local}-${SLURM_ARRAY_TASK_ID:-0}-$port.log"
    log "starting vLLM for $model as $served on port $port${group:+, GPU(s) $group} (log: $logfile)"
    # shellcheck disable=SC2086
    ( [[ -n "$group" ]] && export CUDA_VISIBLE_DEVICES="$group"
      exec "$python" -m vllm.entrypoints.openai.api_server --model "$path" --served-model-name "$served" \
          --host 127.0.0.1 --port "$port" "${tp[@]}" ${VLLM_ARGS:-} ) > "$logfile" 2>&1 &
    pids+=($!); ports+=("$port"); urls+=("http://127.0.0.1:$port/v1")
    VLLM_PIDS+=($!)
  done
  trap vllm_stop EXIT
  local deadline=$((SECONDS + ${VLLM_STARTUP_TIMEOUT:-900})) k waiting
  while :; do
    waiting=0
    for k in "${!pids[@]}"; do
      if ! kill -0 "${pids[$k]}" 2>/dev/null; then
        log "vLLM on port ${ports[$k]} exited; last lines of its log:"
        tail -20 "$LOG_DIR/vllm-${SLURM_JOB_ID:-local}-${SLURM_ARRAY_TASK_ID:-0}-${ports[$k]}.log" >&2
        exit 1
      fi
      "$PYTHON" -c "import httpx,sys; sys.exit(httpx.get(sys.argv[1], timeout=5).status_code != 200)" \
          "http://127.0.0.1:${ports[$k]}/health" 2>/dev/null || waiting=$((waiting + 1))
    done
    (( waiting == 0 )) && break
    (( SECONDS < deadline )) || { log "vLLM: $waiting server(s) not healthy after ${VLLM_STARTUP_TIMEOUT:-900}s"; exit 1; }
    sleep 2
  done
  export "$var=$(IFS=,; echo "${urls[*]}")"
  log "vLLM ready: $var=${!var}"
}

vllm_stop() {
  local pid
  for pid in "${VLLM_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${VLLM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  VLLM_PIDS=()
}
