"""slurm/lib/vllm.sh: several vLLM servers in one job, one per GPU (or VLLM_NUM_SERVERS on a CPU machine),
their URLs exported as one comma-separated OPENAI_BASE_URL that the openai backend uses in rotation,
all of them stopped when the job's shell exits."""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.slurm_cluster import free_port

SERVED = "smollm2-135m-instruct"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_job(script: str, tmp_path, **env) -> subprocess.CompletedProcess:
    """SCRIPT after sourcing the two libraries, as an sbatch file would, under plain bash."""
    full = f"source slurm/lib/common.sh\nsource slurm/lib/vllm.sh\n{script}"
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "CUDA_VISIBLE_DEVICES")}
    env = dict(
        base, RUN_DIR=str(tmp_path / "run"), LOG_DIR=str(tmp_path / "logs"), CONFIG_DIR="", PYTHON=sys.executable, **env
    )
    return subprocess.run(["bash", "-c", full], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


STAND_IN = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port = int(sys.argv[sys.argv.index("--port") + 1])
print("stand-in engine: model loaded", flush=True)
with open(os.environ["RECORD"], "a") as fh:
    fh.write(json.dumps({"argv": sys.argv[1:], "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\\n")
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def fake_vllm(tmp_path):
    """A `vllm` package whose api_server is the stand-in above; put it on PYTHONPATH."""
    fake = tmp_path / "fake_vllm"
    (fake / "vllm" / "entrypoints" / "openai").mkdir(parents=True)
    for d in ("vllm", "vllm/entrypoints", "vllm/entrypoints/openai"):
        (fake / d / "__init__.py").write_text("")
    (fake / "vllm" / "entrypoints" / "openai" / "api_server.py").write_text(STAND_IN)
    return fake


def test_servers_per_gpu_group_with_tensor_parallel(tmp_path):
    """The GPU bookkeeping, with a stand-in for the server process (the real one needs GPUs)."""
    fake = fake_vllm(tmp_path)
    record = tmp_path / "record.jsonl"
    done = run_job(
        'vllm_start tiny-model served-name\necho "URLS=$OPENAI_BASE_URL"\n'
        'vllm_start other-model other RATIONALE_BASE_URL\necho "RATIONALE=$RATIONALE_BASE_URL"\n'
        'echo "PIDS=${VLLM_PIDS[*]}"',
        tmp_path,
        VLLM_PYTHON=sys.executable,
        PYTHONPATH=str(fake),
        RECORD=str(record),
        CUDA_VISIBLE_DEVICES="4,5,6,7,8",
        VLLM_GPUS_PER_SERVER="2",
        PROCSUP_VLLM_PORT=str(free_port()),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = dict(
        line.split("=", 1) for line in done.stdout.splitlines() if line.split("=")[0] in ("URLS", "RATIONALE", "PIDS")
    )
    urls = out["URLS"].split(",")
    assert (
        len(urls) == 2
        and len(set(urls)) == 2
        and all(u.startswith("http://127.0.0.1:") and u.endswith("/v1") for u in urls)
    )
    assert len(out["RATIONALE"].split(",")) == 2 and not set(out["RATIONALE"].split(",")) & set(urls)
    starts = [json.loads(line) for line in record.read_text().splitlines()]
    assert sorted(s["gpus"] for s in starts) == ["4,5", "4,5", "6,7", "6,7"]  # GPU 8 is left over
    for s in starts:
        assert s["argv"][s["argv"].index("--tensor-parallel-size") + 1] == "2"
    assert sorted(s["argv"][s["argv"].index("--served-model-name") + 1] for s in starts) == [
        "other",
        "other",
        "served-name",
        "served-name",
    ]
    time.sleep(0.5)
    assert not any(alive(int(p)) for p in out["PIDS"].split())  # stopped with the shell


def test_array_tasks_on_one_node_get_disjoint_port_blocks(tmp_path):
    """Consecutive job ids (the tasks of an array) get disjoint blocks of 16 ports; vLLM's own VLLM_PORT is
    not read; the servers get --max-model-len 8192 unless VLLM_ARGS gives one."""
    from common.llm.vllm_server import PORTS_PER_JOB, job_port_base

    bases = [job_port_base(str(job)) for job in range(41000, 41010)]
    assert all(b2 - b1 == PORTS_PER_JOB for b1, b2 in zip(bases, bases[1:]))
    fake, record = fake_vllm(tmp_path), tmp_path / "record.jsonl"
    ports = []
    for job, vllm_args in (("41000", ""), ("41001", "--max-model-len 2048")):
        done = run_job(
            'vllm_start tiny-model\necho "URLS=$OPENAI_BASE_URL"',
            tmp_path,
            VLLM_PYTHON=sys.executable,
            PYTHONPATH=str(fake),
            RECORD=str(record),
            SLURM_JOB_ID=job,
            VLLM_NUM_SERVERS="2",
            VLLM_PORT="12345",
            VLLM_ARGS=vllm_args,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        urls = next(line for line in done.stdout.splitlines() if line.startswith("URLS=")).split("=", 1)[1]
        ports.append([int(u.removesuffix("/v1").rsplit(":", 1)[1]) for u in urls.split(",")])
    for job_ports, base in zip(ports, bases):
        assert len(job_ports) == 2 and all(base <= p < base + PORTS_PER_JOB for p in job_ports), (ports, bases)
    starts = [json.loads(line)["argv"] for line in record.read_text().splitlines()]
    lens = [[a[i + 1] for i, x in enumerate(a) if x == "--max-model-len"] for a in starts]
    assert lens == [["8192"], ["8192"], ["2048"], ["2048"]]


def test_no_servers_when_urls_are_given(tmp_path):
    done = run_job(
        'vllm_start tiny-model\necho "URLS=$OPENAI_BASE_URL"',
        tmp_path,
        OPENAI_BASE_URL="http://a:1/v1,http://b:2/v1",
        VLLM_PYTHON="/nonexistent",
    )
    assert done.returncode == 0 and "URLS=http://a:1/v1,http://b:2/v1" in done.stdout
    assert "using those servers" in done.stdout


def test_a_server_that_dies_fails_the_job_with_its_log(tmp_path):
    done = run_job(
        "vllm_start tiny-model",
        tmp_path,
        VLLM_PYTHON=sys.executable,
        PROCSUP_VLLM_PORT=str(free_port()),
        PYTHONPATH=str(tmp_path),
    )  # no vllm module there
    assert done.returncode == 1 and "exited; last lines of its log" in done.stdout
    assert "No module named 'vllm'" in done.stderr


def test_a_server_that_dies_mid_stage_stops_the_job_with_its_log_tail(tmp_path):
    """The server dies while the stage runs (a 120 s sleep stands in for it): the watchdog prints the
    server's log tail and stops the stage within seconds, and the job fails."""
    script = (
        'vllm_start tiny-model\nkill -KILL "${VLLM_PIDS[0]}"\n"$PYTHON" -c "import time; time.sleep(120)"\necho DONE'
    )
    started = time.monotonic()
    done = run_job(
        script,
        tmp_path,
        VLLM_PYTHON=sys.executable,
        PYTHONPATH=str(fake_vllm(tmp_path)),
        RECORD=str(tmp_path / "record.jsonl"),
        PROCSUP_VLLM_PORT=str(free_port()),
        VLLM_WATCH_INTERVAL="0.5",
    )
    assert time.monotonic() - started < 30
    assert done.returncode != 0 and "DONE" not in done.stdout, done.stdout + done.stderr
    assert "died during the stage" in done.stdout and "stand-in engine: model loaded" in done.stdout
    assert "FAILED (exit 143)" in done.stdout  # the stage's python was stopped by SIGTERM


@pytest.mark.vllm
@pytest.mark.slow
def test_two_real_servers_on_cpu_serve_in_rotation(smollm2_dir, tmp_path):
    python = REPO / ".venv-vllm" / "bin" / "python"
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(".venv-vllm is missing in CI: `make test` should have built it (make setup-vllm)")
        pytest.skip(".venv-vllm is missing: run `make setup-vllm`")
    client = (
        f'"$PYTHON" -c "from common.llm.openai import OpenAIBackend; '
        f"outs = OpenAIBackend(model='{SERVED}').generate(['The capital of France is'] * 4, max_tokens=4); "
        "print('errors', sum(o.error is not None for o in outs))\""
    )
    done = run_job(
        f'vllm_start {SERVED}\necho "URLS=$OPENAI_BASE_URL"\necho "PIDS=${{VLLM_PIDS[*]}}"\n{client}',
        tmp_path,
        VLLM_PYTHON=str(python),
        VLLM_NUM_SERVERS="2",
        PROCSUP_VLLM_PORT=str(free_port()),
        VLLM_ARGS="--max-model-len 2048 --dtype float32 --enforce-eager",
        VLLM_CPU_KVCACHE_SPACE="1",
        HF_HUB_OFFLINE="1",
    )
    logs = sorted((tmp_path / "logs").glob("vllm-*.log"))
    assert done.returncode == 0, done.stdout + done.stderr + "".join(p.read_text()[-2000:] for p in logs)
    out = dict(line.split("=", 1) for line in done.stdout.splitlines() if line.split("=")[0] in ("URLS", "PIDS"))
    assert len(set(out["URLS"].split(","))) == 2 and "errors 0" in done.stdout
    assert len(logs) == 2 and all("/v1/completions" in p.read_text() for p in logs)  # both servers answered
    time.sleep(1)
    assert not any(alive(int(p)) for p in out["PIDS"].split())
