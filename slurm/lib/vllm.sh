# vLLM's OpenAI-compatible server inside a job: start, wait on /health, export OPENAI_BASE_URL, stop on exit.
#   vllm_start MODEL      (a registry name, Hub id or path; served under that name)
# Does nothing when OPENAI_BASE_URL is already set (a server you run elsewhere).
# Knobs: VLLM_PYTHON (interpreter with vllm), VLLM_PORT, VLLM_ARGS, VLLM_STARTUP_TIMEOUT (s).
vllm_start() {
  local model=$1
  if [[ -n "${OPENAI_BASE_URL:-}" ]]; then log "using the server at $OPENAI_BASE_URL"; return; fi
  local python="${VLLM_PYTHON:-$REPO_DIR/.venv-vllm/bin/python}"
  local port="${VLLM_PORT:-$((20000 + (${SLURM_JOB_ID:-$$} % 20000)))}"
  local path; path=$("$PYTHON" -c "import sys; from common.models import resolve; print(resolve(sys.argv[1]))" "$model")
  local logfile="logs/vllm-${SLURM_JOB_ID:-local}-${SLURM_ARRAY_TASK_ID:-0}.log"
  log "starting vLLM for $model on port $port (log: $logfile)"
  # shellcheck disable=SC2086
  "$python" -m vllm.entrypoints.openai.api_server --model "$path" --served-model-name "$model" \
      --host 127.0.0.1 --port "$port" ${VLLM_ARGS:-} > "$logfile" 2>&1 &
  VLLM_PID=$!
  trap vllm_stop EXIT
  local deadline=$((SECONDS + ${VLLM_STARTUP_TIMEOUT:-900}))
  until "$PYTHON" -c "import httpx,sys; sys.exit(httpx.get(sys.argv[1], timeout=5).status_code != 200)" \
        "http://127.0.0.1:$port/health" 2>/dev/null; do
    kill -0 "$VLLM_PID" 2>/dev/null || { log "vLLM exited; last lines of $logfile:"; tail -20 "$logfile" >&2; exit 1; }
    (( SECONDS < deadline )) || { log "vLLM not healthy after ${VLLM_STARTUP_TIMEOUT:-900}s"; exit 1; }
    sleep 5
  done
  export OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
  log "vLLM ready at $OPENAI_BASE_URL"
}

vllm_stop() {
  if [[ -n "${VLLM_PID:-}" ]] && kill -0 "$VLLM_PID" 2>/dev/null; then
    kill "$VLLM_PID"; wait "$VLLM_PID" 2>/dev/null || true
  fi
}
