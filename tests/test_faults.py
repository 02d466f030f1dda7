"""The stage contract under faults and bad input (issue 11), on no-model stages run as real processes.

parse_rationales is the no-model stage that resumes (run_stage); filter_rationales is the one that is
always redone. Each test pins one defect: it failed before the fix."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARD = "part-00000-of-00001.jsonl"
VOLATILE = ("wall_seconds", "finished_at")  # manifest fields that are times


def write_docs(path: Path, n: int) -> Path:
    """extract_rationales-style records whose rewrites hold one rationale each."""
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            text = f"Tom has {i} apples. He buys two more. Now he has {i + 2} apples."
            rewrite = text.replace(" He buys", " <BOT>He gets more.<EOT> He buys")
            fh.write(json.dumps({"id": f"d{i}", "source": "t", "input": text, "output": rewrite}) + "\n")
    return path


def parse_cmd(inp: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sampling.parse_rationales", "--input", str(inp), "--output", str(out), *extra]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, **kw)


def wait_for_journal(journal: Path, min_lines: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) >= min_lines:
            return
        time.sleep(0.005)
    raise AssertionError(f"{journal} never reached {min_lines} lines (exit {proc.poll()})")


def stable_manifest(out: Path) -> dict:
    """manifest.json without the fields that are times, for comparing runs."""

    def strip(d):
        return {k: strip(v) if isinstance(v, dict) else v for k, v in d.items() if k not in VOLATILE}

    merged = json.loads((out / "manifest.json").read_text())
    merged["shards"] = [strip(s) for s in merged["shards"]]
    merged["config"] = {k: v for k, v in merged["config"].items() if k != "output"}
    for s in merged["shards"]:
        s["config"] = {k: v for k, v in s["config"].items() if k != "output"}
    return strip(merged)


# ----------------------------------------------------------------------------- defect 1: one writer per shard


def test_second_process_on_a_shard_is_refused_naming_the_holder(tmp_path):
    inp = write_docs(tmp_path / "docs.jsonl", 400)
    out = tmp_path / "out"
    first = subprocess.Popen(parse_cmd(inp, out, "--batch-size", "1"), cwd=REPO, stderr=subprocess.DEVNULL)
    try:
        wait_for_journal(out / (SHARD + ".journal"), 1, first)
        os.kill(first.pid, signal.SIGSTOP)  # hold it mid-shard while the second one starts
        second = run(parse_cmd(inp, out, "--batch-size", "1"))
        os.kill(first.pid, signal.SIGCONT)
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode != 0
    assert "being written by another process" in second.stderr and f"pid {first.pid}" in second.stderr
    ids = [json.loads(line)["doc_id"] for line in (out / SHARD).read_text().splitlines()]
    assert ids == [f"d{i}" for i in range(400)]  # each record once, in order


def test_two_processes_on_different_shards_both_succeed(tmp_path):
    inp = write_docs(tmp_path / "docs.jsonl", 200)
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            parse_cmd(inp, out, "--shard-index", str(i), "--num-shards", "2", "--batch-size", "1"),
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shards_finished"] == 2 and manifest["counts"]["in"] == 200
    ids = sorted(json.loads(x)["doc_id"] for p in out.glob("part-*.jsonl") for x in p.read_text().splitlines())
    assert ids == sorted(f"d{i}" for i in range(200))


# ----------------------------------------------------------------------------- defects 2 and 9: a kill anywhere

# Runs a stage's main with os.fsync/replace/rename/unlink wrapped: SIGKILL just before the KILL_AT-th such
# call, so every step of a shard's life (each record's write, the sort, the manifest, the rename, the
# clean-up) is a kill point. With KILL_AT=0 it prints how many calls a clean run makes.
KILLER = """
import atexit, os, runpy, signal, sys
kill_at, calls = int(os.environ["KILL_AT"]), [0]
def wrap(fn):
    def inner(*a, **kw):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return fn(*a, **kw)
    return inner
for name in ("fsync", "replace", "rename", "unlink"):
    setattr(os, name, wrap(getattr(os, name)))
atexit.register(lambda: sys.stderr.write(f"CALLS {calls[0]}\\n"))
module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def write_mixed_docs(path: Path) -> Path:
    """Docs that parse into triples, an unfaithful rewrite and one without rationales, so that the stage's
    own counts (kept by the journal across runs) are not all zero."""
    write_docs(path, 7)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "u", "source": "t", "input": "One two three.", "output": "Entirely else."}) + "\n")
        fh.write(json.dumps({"id": "n", "source": "t", "input": "Plain text.", "output": "Plain text."}) + "\n")
    return path


def files_in(out: Path) -> list[str]:
    """The files of an output directory, less the hidden temporary file a kill inside an atomic JSON write
    leaves (named .NAME.PID.tmp, never read)."""
    return sorted(p.name for p in out.rglob("*") if p.is_file() and not (p.name[0] == "." and p.suffix == ".tmp"))


def killed_at(n: int, cmd: list[str]) -> subprocess.CompletedProcess:
    return run([sys.executable, "-c", KILLER, *cmd[2:]], env=dict(os.environ, KILL_AT=str(n)))


def test_a_kill_at_any_point_then_a_rerun_equals_a_clean_run(tmp_path):
    inp = write_mixed_docs(tmp_path / "docs.jsonl")
    clean = tmp_path / "clean"
    first = killed_at(0, parse_cmd(inp, clean, "--batch-size", "2"))
    assert first.returncode == 0, first.stderr
    calls = int(first.stderr.rsplit("CALLS ", 1)[1].split()[0])
    assert calls >= 8
    want_files = files_in(clean)
    for n in range(1, calls + 1):
        out = tmp_path / f"kill{n}"
        killed = killed_at(n, parse_cmd(inp, out, "--batch-size", "2"))
        assert killed.returncode == -signal.SIGKILL, (n, killed.stderr[-2000:])
        rerun = run(parse_cmd(inp, out, "--batch-size", "2"))
        assert rerun.returncode == 0, (n, rerun.stderr[-2000:])
        assert (out / SHARD).read_bytes() == (clean / SHARD).read_bytes(), n
        assert stable_manifest(out) == stable_manifest(clean), n
        assert files_in(out) == want_files, n


def test_a_shard_without_its_manifest_is_redone_not_skipped(tmp_path):
    """The state a kill between the rename and the manifest left before the fix (the manifest is now
    written first): a rerun must not call the shard finished and accept other options."""
    inp = write_mixed_docs(tmp_path / "docs.jsonl")
    out = tmp_path / "out"
    assert run(parse_cmd(inp, out)).returncode == 0
    want = stable_manifest(out)
    (out / "manifests" / "part-00000-of-00001.json").unlink()
    (out / "manifest.json").unlink()
    rerun = run(parse_cmd(inp, out))
    assert rerun.returncode == 0, rerun.stderr
    assert stable_manifest(out) == want
    assert not list(out.glob("*.unfinished"))


def interrupted(tmp_path: Path, inp: Path, name: str = "out") -> Path:
    """An output directory whose shard was SIGKILLed after some batches were journalled."""
    out = tmp_path / name
    killed = killed_at(4, parse_cmd(inp, out, "--batch-size", "2"))  # after the second batch's fsync
    assert killed.returncode == -signal.SIGKILL
    assert (out / (SHARD + ".journal")).read_text().count("\n") >= 1 and not (out / SHARD).exists()
    return out


# ----------------------------------------------------------------------------- defect 3: settings at shard start


def test_a_resume_with_other_options_or_inputs_is_refused_naming_them(tmp_path):
    inp = write_mixed_docs(tmp_path / "docs.jsonl")
    out = interrupted(tmp_path, inp)
    other = run(parse_cmd(inp, out, "--batch-size", "2", "--min-faithfulness", "0.5"))
    assert other.returncode != 0 and "min_faithfulness: 0.9 then, 0.5 now" in other.stderr
    original = inp.read_bytes()
    inp.write_bytes(original.replace(b"apples", b"pears"))  # another file at the same path
    changed = run(parse_cmd(inp, out, "--batch-size", "2"))
    assert changed.returncode != 0 and "input data" in changed.stderr
    inp.write_bytes(original)
    same = run(parse_cmd(inp, out, "--batch-size", "3"))  # a resume-safe option may differ
    assert same.returncode == 0, same.stderr
    clean = tmp_path / "clean"
    assert run(parse_cmd(inp, clean)).returncode == 0
    assert (out / SHARD).read_bytes() == (clean / SHARD).read_bytes()


# ----------------------------------------------------------------------------- defect 5: a partial shorter than its journal


def test_a_partial_shorter_than_its_journal_is_cut_back_not_zero_padded(tmp_path):
    inp = write_mixed_docs(tmp_path / "docs.jsonl")
    out = interrupted(tmp_path, inp)
    partial = out / (SHARD + ".partial")
    journalled_end = json.loads((out / (SHARD + ".journal")).read_text().splitlines()[-1])["entries"][-1][3]
    partial.write_bytes(partial.read_bytes()[: journalled_end - 10])  # the journal says more than is on disk
    rerun = run(parse_cmd(inp, out, "--batch-size", "2"))
    assert rerun.returncode == 0, rerun.stderr
    clean = tmp_path / "clean"
    assert run(parse_cmd(inp, clean, "--batch-size", "2")).returncode == 0
    assert b"\0" not in (out / SHARD).read_bytes()
    assert (out / SHARD).read_bytes() == (clean / SHARD).read_bytes()
    assert stable_manifest(out) == stable_manifest(clean)
    assert "had no data on disk; they are redone" in rerun.stderr
