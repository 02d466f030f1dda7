"""A real single-node Slurm for tests (reference/peers.md D.6): munged, slurmctld and slurmd started as
daemons in a private temp dir, on free ports, with a generated slurm.conf; stopped by pid.

The node is declared as a 16-core, 128 GB node with 2 GPUs (`SlurmdParameters=config_overrides`;
the GPUs are /dev/null and /dev/zero in gres.conf), so the sbatch files' own #SBATCH headers are
submitted unchanged. Jobs run on this machine's CPUs. Clients (sbatch, squeue, scancel, scontrol)
reach this cluster only through `env` (SLURM_CONF); nothing outside the temp dir is touched.
Also here: the tiny-model environment for the RATIONALYST chain, shared with test_slurm_scripts.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import REPO, mixed_corpus

FINAL_STATES = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
}
DAEMONS = ("munged", "slurmctld", "slurmd")


def unavailable() -> str | None:
    """Why no cluster can be started here, or None."""
    missing = [
        p
        for p in ("sbatch", "squeue", "scancel", "scontrol", "sinfo", *DAEMONS)
        if not shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    ]
    if missing:
        return (
            f"Slurm is not installed ({', '.join(missing)} missing): `make setup-slurm` installs slurm-wlm "
            "and munge with apt-get (as root)"
        )
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlurmCluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="procsup-slurm-"))  # short: the munge socket path is limited
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.dir / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.pid_files = {
            "munged": self.dir / "munge" / "munged.pid",
            "slurmctld": self.dir / "slurmctld.pid",
            "slurmd": self.dir / "slurmd.pid",
        }

    def sbin(self, name: str) -> str:
        return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")

    def write_config(self) -> None:
        d, user = self.dir, _user()
        munge = d / "munge"
        munge.mkdir(mode=0o711)
        for sub in ("state", "spool", "log"):
            (d / sub).mkdir()
        key = munge / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.conf.write_text(f"""\
ClusterName=procsuptest
SlurmctldHost={self.host}(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge}/munge.socket
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={self.pid_files["slurmctld"]}
SlurmdPidFile={self.pid_files["slurmd"]}
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
KillWait=5
GresTypes=gpu
NodeName={self.host} NodeAddr=127.0.0.1 CPUs=16 RealMemory=131072 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")
        (d / "gres.conf").write_text(
            f"NodeName={self.host} Name=gpu File=/dev/null\nNodeName={self.host} Name=gpu File=/dev/zero\n"
        )

    def start(self, timeout: float = 60.0) -> SlurmCluster:
        self.write_config()
        munge = self.dir / "munge"
        try:
            self._daemon(
                [
                    self.sbin("munged"),
                    "--force",
                    f"--key-file={munge}/munge.key",
                    f"--socket={munge}/munge.socket",
                    f"--pid-file={self.pid_files['munged']}",
                    f"--log-file={munge}/munged.log",
                    f"--seed-file={munge}/munged.seed",
                ]
            )
            self._daemon([self.sbin("slurmctld"), "-f", str(self.conf)])
            self._daemon([self.sbin("slurmd"), "-f", str(self.conf), "-N", self.host])
            deadline = time.time() + timeout
            while time.time() < deadline:
                out = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True)
                if out.returncode == 0 and out.stdout.strip() == "idle":
                    return self
                time.sleep(0.5)
            raise RuntimeError(f"the node is not idle after {timeout:.0f}s")
        except Exception as e:
            logs = self.logs()
            self.stop()
            raise RuntimeError(f"could not start Slurm in {self.dir}: {e}\n{logs}") from e

    def _daemon(self, cmd: list[str]) -> None:
        result = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}: {result.stderr.strip()}")

    def logs(self, lines: int = 20) -> str:
        out = []
        for log in [self.dir / "munge" / "munged.log", *sorted((self.dir / "log").glob("*.log"))]:
            if log.exists():
                out.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def stop(self) -> None:
        """Cancel every job of this cluster, then stop the daemons by pid (slurmd, slurmctld, munged)."""
        if self.pid_files["slurmctld"].exists():
            subprocess.run(["scancel", "--user", _user()], env=self.env, capture_output=True, timeout=30)
            deadline = time.time() + 30
            while time.time() < deadline:
                out = subprocess.run(
                    ["squeue", "-h", "-t", "all", "-o", "%T"], env=self.env, capture_output=True, text=True, timeout=30
                )
                if out.returncode != 0 or not set(out.stdout.split()) - FINAL_STATES:
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = _read_pid(self.pid_files[name])
            if pid:
                _terminate(pid)
        shutil.rmtree(self.dir, ignore_errors=True)

    def states(self, job_ids: list[str]) -> dict[str, str]:
        """{"<job>" or "<array job>_<task>": state} for the given jobs."""
        states = {}
        for jid in job_ids:
            out = subprocess.run(
                ["scontrol", "show", "job", "-o", str(jid)], env=self.env, capture_output=True, text=True, timeout=30
            )
            for line in out.stdout.splitlines():
                f = dict(re.findall(r"(\w+)=(\S*)", line))
                key = f"{f['ArrayJobId']}_{f['ArrayTaskId']}" if f.get("ArrayJobId") else f["JobId"]
                states[key] = f["JobState"]
        return states

    def wait(self, job_ids: list[str], timeout: float = 600.0) -> dict[str, str]:
        """Wait until none of the jobs is pending or running; their final states."""
        deadline = time.time() + timeout
        while True:
            states = self.states(job_ids)
            if states and set(states.values()) <= FINAL_STATES:
                return states
            if time.time() > deadline:
                raise TimeoutError(f"jobs still not finished after {timeout:.0f}s: {states}")
            time.sleep(1.0)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _terminate(pid: int, grace: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + grace
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ----------------------------------------------------------------------------- the tiny RATIONALYST chain


def tiny_chain_env(tmp_path: Path, model_dir: str, run_dir: Path, corpus: Path | None = None) -> dict[str, str]:
    """The whole RATIONALYST chain on a tiny Llama, with the demo recipes and small arrays (a few seconds a stage)."""
    if corpus is None:
        corpus = tmp_path / "corpus.jsonl"
    if not corpus.exists():
        mixed_corpus(corpus, n_prose=6, n_reasoning=4)
    env = dict(
        os.environ,
        RUN_DIR=str(run_dir),
        LOG_DIR=str(run_dir.parent / f"{run_dir.name}-logs"),
        HF_HUB_OFFLINE="1",
        PROCSUP_CACHE=str(tmp_path / "cache"),
        CONFIG_DIR="configs/demo",
        CORPUS=str(corpus),
        MODEL=model_dir,
        DATASETS="gsm_symbolic",
        NUM_GPUS="1",
        PREFILTER_ARRAY="0-1",
        PREFILTER_ARGS="--reference-limit 50",
        EXTRACT_ARRAY="0-0",
        SCORE_ARRAY="0-1",
        EXTRACT_RATIONALES_ARGS="--limit-per-dataset 2 --max-steps 3 --step-max-tokens 4",
        FILTER_RATIONALES_ARGS="--tau -1000 --dev-fraction 0.3",
        FINETUNE_ARGS="--epochs 1 --batch-size 2 --grad-accum 1",
        INFERENCE_ARGS="--limit 4 --batch-size 1 --shots 1 --max-steps 2 --step-max-tokens 4 --rationale-max-tokens 4",
        EVALUATE_ARGS="--bootstrap 200",
        VERIFY_STEPS_ARGS="--limit 2 --rationale-max-tokens 4",
        EVALUATE_STEPS_ARGS="--bootstrap 50",
    )
    if (REPO / ".venv").exists():
        env["PYTHON"] = str(REPO / ".venv" / "bin" / "python")
    return env


def tiny_refiner_env(tmp_path: Path, t5_dir: str, refiner_dir: Path) -> dict[str, str]:
    """The REFINER chain on a tiny T5 and six MWP problems (tests/test_train_refiner.CSV)."""
    from tests.conftest import CSV

    data = tmp_path / "mwp.csv"
    data.write_text(CSV)
    return dict(
        REFINER_DIR=str(refiner_dir),
        TRAIN_DATA=str(data),
        TEST_DATA=str(data),
        GENERATOR_MODEL=t5_dir,
        CRITIC_MODEL=t5_dir,
        WARMSTART_FRACTION="1",
        DEV_FRACTION="0.34",
        REFINER_WARMSTART_ARGS="--max-steps 2 --eval-steps 1 --batch-size 2",
        REFINER_CRITIC_ARGS="--max-steps 2 --batch-size 4",
        TRAIN_REFINER_ARGS="--epochs 1 --max-train 3 --batch-size 3 --exp-num 2 --turns 2 --max-new-tokens 8 "
        "--dev-fraction 0.34",
        REFINER_PREDICT_ARGS="--limit 3 --max-new-tokens 8",
    )


def pipeline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "slurm/pipeline.sh", *args], cwd=REPO, env=env, capture_output=True, text=True)


def submitted_jobs(stdout: str) -> dict[str, str]:
    """{"slurm/70_inference.sbatch": "42", "slurm/20_extract_rationales.sbatch FAMILY=web": "40", ...}"""
    return dict(re.findall(r"^submitted (.+?) as job (\d+)", stdout, re.M))


def chain_outputs(run_dir: Path) -> dict[str, bytes]:
    """Everything a run produced that must not depend on how it ran: finished shards, the trained
    weights, the report (manifests and logs carry times and paths, so they are left out)."""
    files = {}
    for p in sorted(run_dir.rglob("*")):
        rel = str(p.relative_to(run_dir))
        if p.is_file() and (
            re.search(r"part-\d+-of-\d+\.jsonl$", rel)
            or rel.endswith("model.safetensors")
            and ("final/" in rel or "best/" in rel)
            or rel == "report/report.md"
        ):
            files[rel] = p.read_bytes()
    return files
