"""Both chains on a real single-node Slurm (tests/slurm_cluster.py starts munged, slurmctld and slurmd in a
temp dir and stops them afterwards): the submitted chains complete, RATIONALYST's with the same outputs as
`--local`; a task cancelled mid-shard (preemption) resumes on resubmission to the same outputs; a failing
stage cancels its dependents and its log names the stage and the error.
Skipped only when Slurm is not installed (`make setup-slurm` installs it as root)."""

import subprocess
import time

import pytest

from tests import slurm_cluster
from tests.conftest import REPO
from tests.slurm_cluster import SlurmCluster, chain_outputs, pipeline, submitted_jobs, tiny_chain_env, tiny_refiner_env

pytestmark = pytest.mark.slow
INFERENCE = "slurm/70_inference.sbatch"


@pytest.fixture(scope="module")
def slurm():
    why = slurm_cluster.unavailable()
    if why:
        pytest.skip(why)
    cluster = SlurmCluster().start()  # a failure to start is an error (with the daemons' logs), not a skip
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus") / "corpus.jsonl"


def submit(slurm, env, pipeline_name="rationalyst", n_jobs=11):
    """RATIONALYST: prefilter, 2 x extract, parse, score, filter, finetune, inference and step verification,
    evaluate, the verification report (11 jobs); REFINER: examples, critic data, warm start, critic, training,
    prediction (6)."""
    result = pipeline(dict(env, SLURM_CONF=slurm.env["SLURM_CONF"]), pipeline_name)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = submitted_jobs(result.stdout)
    assert len(jobs) == n_jobs, result.stdout
    return jobs, result.stdout


@pytest.fixture(scope="module")
def local_run(tiny_llama_dir, corpus, tmp_path_factory):
    """The RATIONALYST chain with --local, started here and left running beside the submitted chains."""
    tmp = tmp_path_factory.mktemp("local-run")
    with open(tmp / "local.log", "w") as log:
        proc = subprocess.Popen(
            ["bash", "slurm/pipeline.sh", "rationalyst", "--local"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=tiny_chain_env(tmp, tiny_llama_dir, tmp / "run", corpus),
        )
    yield tmp, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def uninterrupted(slurm, tiny_llama_dir, tiny_t5_dir, corpus, tmp_path_factory):
    """Both chains submitted once and left alone."""
    tmp = tmp_path_factory.mktemp("slurm-run")
    env = dict(
        tiny_chain_env(tmp, tiny_llama_dir, tmp / "run", corpus), **tiny_refiner_env(tmp, tiny_t5_dir, tmp / "refiner")
    )
    jobs, stdout = submit(slurm, env, "all", 17)
    states = slurm.wait(list(jobs.values()), timeout=900)
    return tmp / "run", env, jobs, states, stdout


def test_submitted_chains_complete_with_the_local_outputs(local_run, uninterrupted):
    run_dir, env, jobs, states, stdout = uninterrupted
    assert set(states.values()) == {"COMPLETED"}, states
    assert sum(k.startswith(jobs["slurm/10_prefilter.sbatch"] + "_") for k in states) == 2  # an array of 2
    assert sum(k.startswith(jobs[INFERENCE] + "_") for k in states) == 2  # one per heuristic
    assert sum(k.startswith(jobs["slurm/160_refiner_predict.sbatch"] + "_") for k in states) == 2  # per critic
    extract = [jobs[k] for k in jobs if "20_extract" in k]
    assert f"(after {extract[0]}:{extract[1]})" in stdout  # parse waits for both extraction families
    assert f"outputs: {run_dir} {env['REFINER_DIR']}   logs: {env['LOG_DIR']}" in stdout
    log = (run_dir.parent / "run-logs" / f"inference-{jobs[INFERENCE]}_0.out").read_text()
    assert "inference job" in log and "task 0: python -m model_inference.inference" in log

    refiner = chain_outputs(run_dir.parent / "refiner")  # (its --local twin: test_slurm_scripts.py)
    assert {
        "refiner/best/model.safetensors",
        "predict-critic/part-00000-of-00001.jsonl",
        "predict-oracle/part-00000-of-00001.jsonl",
    } <= set(refiner)

    local, proc = local_run
    assert proc.wait(timeout=900) == 0, (local / "local.log").read_text()[-5000:]
    submitted, here = chain_outputs(run_dir), chain_outputs(local / "run")
    assert {"report/report.md", "rationalyst_model/final/model.safetensors"} <= set(here)
    assert sorted(submitted) == sorted(here)
    assert [k for k in here if submitted[k] != here[k]] == []


def test_preempted_task_resumes_to_the_same_outputs(slurm, uninterrupted, tiny_llama_dir, corpus, tmp_path):
    run_dir = tmp_path / "run"
    env = tiny_chain_env(tmp_path, tiny_llama_dir, run_dir, corpus)
    jobs, _ = submit(slurm, env)
    shard = run_dir / "inference" / "gsm_symbolic-rationalyst" / "part-00000-of-00001.jsonl"
    journal = shard.with_name(shard.name + ".journal")
    task = f"{jobs[INFERENCE]}_0"  # the rationalyst heuristic's task
    deadline = time.time() + 900
    while not (journal.exists() and journal.read_text().count("\n") >= 1):  # one question of 4 done
        assert time.time() < deadline and not shard.exists(), "the task finished before it could be cancelled"
        time.sleep(0.1)
    subprocess.run(["scancel", task], env=slurm.env, check=True)
    states = slurm.wait(list(jobs.values()), timeout=300)
    assert states[task] == "CANCELLED" and not shard.exists()  # stopped mid-shard
    assert states[jobs["slurm/80_evaluate.sbatch"]] == "CANCELLED"  # its dependent did not wait forever

    again, _ = submit(slurm, env)  # resubmit the whole chain
    states = slurm.wait(list(again.values()), timeout=900)
    assert set(states.values()) == {"COMPLETED"}, states
    log = (run_dir.parent / "run-logs" / f"inference-{again[INFERENCE]}_0.out").read_text()
    assert "input(s) already done" in log  # resumed from the journal (logged; the manifest equals a one-shot run's)
    assert chain_outputs(run_dir) == chain_outputs(uninterrupted[0])


def test_failing_stage_cancels_its_dependents_and_names_the_error(slurm, tiny_llama_dir, tmp_path):
    run_dir = tmp_path / "run"
    env = tiny_chain_env(tmp_path, tiny_llama_dir, run_dir)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a fine document"}\n{"text": broken\n')
    env["CORPUS"] = str(bad)
    jobs, _ = submit(slurm, env)
    states = slurm.wait(list(jobs.values()), timeout=300)  # none stays pending
    prefilter = jobs["slurm/10_prefilter.sbatch"]
    assert {s for k, s in states.items() if k.startswith(prefilter + "_")} == {"FAILED"}
    assert {s for k, s in states.items() if not k.startswith(prefilter + "_")} == {"CANCELLED"}, states
    log = (run_dir.parent / "run-logs" / f"prefilter-{prefilter}_0.out").read_text()
    assert "prefilter job" in log and "FAILED (exit" in log  # the stage
    assert f"{bad}:2" in log  # its error: file and line
