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

import pytest

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
# call on a file in KILL_DIR (the output directory), so every step of a shard's life (each record's write, the sort, the manifest, the rename, the
# clean-up) is a kill point. With KILL_AT=0 it prints how many calls a clean run makes.
KILLER = """
import atexit, os, runpy, signal, sys
kill_at, calls, out = int(os.environ["KILL_AT"]), [0], os.path.realpath(os.environ["KILL_DIR"])
readlink = os.readlink
def wrap(fn):
    def inner(*a, **kw):
        target = readlink(f"/proc/self/fd/{a[0]}") if isinstance(a[0], int) else os.fspath(a[0])
        if os.path.realpath(target).startswith(out + os.sep):  # only calls on the stage's output
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
    out = cmd[cmd.index("--output") + 1]
    return run([sys.executable, "-c", KILLER, *cmd[2:]], env=dict(os.environ, KILL_AT=str(n), KILL_DIR=out))


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


# ----------------------------------------------------------------------------- defect 4: complete inputs only


def scored(i: int, gain: float = 1.0) -> dict:
    return {
        "id": f"t{i}",
        "source": "s",
        "preceding": f"p{i}",
        "rationale": f"r{i}",
        "following": f"f{i}",
        "score_with": gain,
        "score_without": 0.0,
    }


def scored_shards(out: Path, n: int, shards: list[int], num_shards: int) -> Path:
    """A stage output directory of score_rationales-like records, with only `shards` of `num_shards` run."""
    from common.config import StageConfig
    from common.stage import run_stage

    inp = out.parent / "scored-input.jsonl"
    inp.write_text("".join(json.dumps(scored(i)) + "\n" for i in range(n)))
    for i in shards:
        cfg = StageConfig(input=str(inp), output=str(out), shard_index=i, num_shards=num_shards)
        assert run_stage("copy", cfg, lambda batch: [[r] for r in batch]) == 0
    return out


def filter_cmd(inp: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sampling.filter_rationales", "--input", str(inp), "--output", str(out), *extra]


def test_a_reader_refuses_a_directory_missing_shards_unless_told(tmp_path):
    half = scored_shards(tmp_path / "scored", 6, [0], 2)
    refused = run(filter_cmd(half, tmp_path / "f"))
    assert refused.returncode != 0 and "holds 1 of its 2 shards (missing part-00001-of-00002.jsonl)" in refused.stderr
    assert not (tmp_path / "f" / "train").exists()
    allowed = run(filter_cmd(half, tmp_path / "f", "--allow-incomplete", "true"))
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads((tmp_path / "f" / "manifest.json").read_text())["counts"]["in"] == 3


def test_a_shard_whose_finish_was_interrupted_is_not_read(tmp_path):
    from common.artifacts import IncompleteInputError, input_files

    full = scored_shards(tmp_path / "scored", 6, [0, 1], 2)
    assert len(input_files(full)) == 2
    (full / "manifests" / "part-00001-of-00002.json").unlink()
    with pytest.raises(IncompleteInputError, match="part-00001-of-00002.jsonl has no finished manifest"):
        input_files(full)
    (full / "part-00001-of-00003.jsonl").write_text("")
    with pytest.raises(IncompleteInputError, match=r"mixes shard sets of \[2, 3\]"):
        input_files(full)


# ----------------------------------------------------------------------------- defect 6: filter_rationales


def test_filter_refuses_a_record_missing_a_field_rather_than_filling_it_with_the_gain(tmp_path):
    inp = tmp_path / "scored.jsonl"
    rows = [scored(i, gain=2.5) for i in range(4)]
    del rows[2]["following"]
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    refused = run(filter_cmd(inp, tmp_path / "a"))
    assert refused.returncode != 0 and "scored.jsonl:3: missing field(s) following" in refused.stderr
    skipped = run(filter_cmd(inp, tmp_path / "b", "--on-bad-record", "skip", "--dev-fraction", "0"))
    assert skipped.returncode == 0, skipped.stderr
    out = [json.loads(x) for x in (tmp_path / "b" / "train" / SHARD).read_text().splitlines()]
    assert [r["id"] for r in out] == ["t0", "t1", "t3"] and all(r["following"].startswith("f") for r in out)
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["counts"]["bad_records"] == 1


def test_filter_writes_its_own_shard_of_the_input(tmp_path):
    inp = tmp_path / "scored.jsonl"
    inp.write_text("".join(json.dumps(scored(i)) + "\n" for i in range(10)))
    for i in range(2):
        done = run(filter_cmd(inp, tmp_path / "f", "--shard-index", str(i), "--num-shards", "2", "--dev-fraction", "0"))
        assert done.returncode == 0, done.stderr
    train = tmp_path / "f" / "train"
    assert sorted(p.name for p in train.iterdir()) == ["part-00000-of-00002.jsonl", "part-00001-of-00002.jsonl"]
    ids = [json.loads(x)["id"] for p in sorted(train.iterdir()) for x in p.read_text().splitlines()]
    assert sorted(ids) == sorted(f"t{i}" for i in range(10)) and len(ids) == 10  # each record once
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert manifest["shards_finished"] == 2 and manifest["counts"]["in"] == 10


def test_evaluate_refuses_a_run_with_a_missing_shard(tmp_path):
    from common.artifacts import IncompleteInputError
    from model_inference import evaluate

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(json.dumps({"config": {"dataset": "gsm8k"}}))
    rows = [{"id": f"q{i}", "correct": True, "heuristic": "greedy"} for i in range(3)]
    (run_dir / "part-00000-of-00002.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(IncompleteInputError, match="holds 1 of its 2 shards"):
        evaluate.evaluate([str(run_dir)], 100, 0)


# ----------------------------------------------------------------------------- defect 8: poison records

LS = "\u2028"  # LINE SEPARATOR: legal inside a JSON string, a line break to str.splitlines


def poison_docs(path: Path) -> tuple[Path, list[str]]:
    """Good docs mixed with each kind of poison; returns the ids that must come out."""
    good = [json.loads(x) for x in write_docs(path, 4).read_text().splitlines()]
    good[2]["input"] += f"{LS}And more."  # one record, though splitlines would cut it in two
    good[2]["output"] += f"{LS}And more."
    lines = [json.dumps(g, ensure_ascii=False).encode() for g in good]
    poison = [
        b'{"id": "bad-utf8", "input": "caf\xe9", "output": "caf\xe9"}',  # latin-1, not UTF-8
        b'{"id": "lone-surrogate", "input": "\\ud800 x", "output": "\\ud800 x"}',
        b'{"id": ["a", "list"], "input": "x", "output": "x"}',
        b'{"id": "wrong-type", "input": 5, "output": "5 <BOT>r<EOT> 6"}',  # raises inside the stage
    ]
    mixed = [lines[0], poison[0], lines[1], poison[1], poison[2], lines[2], poison[3], lines[3]]
    path.write_bytes(b"\n".join(mixed) + b"\n")
    return path, [g["id"] for g in good]


def test_poison_records_stop_the_stage_with_file_and_line_by_default(tmp_path):
    inp, _ = poison_docs(tmp_path / "docs.jsonl")
    stopped = run(parse_cmd(inp, tmp_path / "out"))
    assert stopped.returncode != 0 and "docs.jsonl:2: not UTF-8" in stopped.stderr


@pytest.mark.parametrize("batch_size", ["1", "3", "16"])
def test_poison_records_are_skipped_and_counted_with_skip_whatever_the_batch(tmp_path, batch_size):
    inp, good = poison_docs(tmp_path / "docs.jsonl")
    out = tmp_path / "out"
    done = run(parse_cmd(inp, out, "--on-bad-record", "skip", "--batch-size", batch_size))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(x) for x in (out / SHARD).read_text(encoding="utf-8").split("\n") if x]
    assert [r["doc_id"] for r in rows] == good
    assert rows[2]["following"].endswith(f"{LS}And more.")
    shard = json.loads((out / "manifest.json").read_text())["shards"][0]
    assert shard["counts"]["bad_records"] == 4
    examples = "\n".join(shard["bad_record_examples"])
    for where in ("docs.jsonl:2: not UTF-8", "docs.jsonl:4: a lone surrogate", "docs.jsonl:5: 'id' must be"):
        assert where in examples
    assert "docs.jsonl:7: TypeError" in examples  # the stage raised on that record alone
    assert run(parse_cmd(inp, out, "--on-bad-record", "skip")).returncode == 0  # finished: a rerun is a no-op


def test_a_record_the_stage_raises_on_is_that_records_failure_not_the_batchs(tmp_path):
    inp, good = poison_docs(tmp_path / "docs.jsonl")
    inp.write_bytes(b"\n".join(x for x in inp.read_bytes().split(b"\n") if b'"wrong-type"' in x or b'"d' in x))
    out = tmp_path / "out"
    failed = run(parse_cmd(inp, out, "--batch-size", "16"))
    assert failed.returncode == 3, failed.stderr  # EXIT_FAILURES: the rest is done, the shard stays open
    failures = [json.loads(x) for x in (out / "part-00000-of-00001.failures.jsonl").read_text().splitlines()]
    assert [f["id"] for f in failures] == ["wrong-type"] and "docs.jsonl:4: TypeError" in failures[0]["error"]
    journal = (out / (SHARD + ".journal")).read_text()
    assert all(f'"{g}"' in journal for g in good)


def test_critic_data_reads_a_record_with_a_line_separator_and_skips_one_not_utf8(tmp_path):
    inp = tmp_path / "mwp.jsonl"
    row = {"Body": f"Tom has 3 apples .{LS}He buys 2 more .", "Question": "How many ?", "Numbers": "3 2"}
    formula = "#0: add ( number0, number1 ) | EOS"
    good = json.dumps({**row, "Linear_Formula": formula, "Answer": 5.0}, ensure_ascii=False).encode()
    unparsable = json.dumps({**row, "Linear_Formula": "add(n0,n1)", "Answer": 5.0}).encode()
    latin1 = b'{"Body": "caf\xe9", "Linear_Formula": "x", "Answer": 1}'
    inp.write_bytes(b"\n".join([good, latin1, unparsable]) + b"\n")
    out = tmp_path / "critic"
    cmd = [sys.executable, "-m", "training.critic_data", "--task", "mwp", "--input", str(inp), "--output", str(out)]
    stopped = run(cmd)
    assert stopped.returncode != 0 and "mwp.jsonl:2: not UTF-8" in stopped.stderr
    done = run([*cmd, "--on-bad-record", "skip"])
    assert done.returncode == 0, done.stderr
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["examples"] == 2 and counts["bad_records"] == 2  # not UTF-8; a gold formula that does not parse
    critic = (out / "critic" / SHARD).read_text(encoding="utf-8").split("\n")
    assert any(f"3 apples .{LS}He buys" in line for line in critic)


# ----------------------------------------------------------------------------- defect 10: smaller items, secrets


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "batch_size must be at least 1"),
        (["--batch-size", "-4"], "batch_size must be at least 1"),
        (["--min-faithfulness", "1.5"], "min_faithfulness must be in [0, 1]"),
    ],
)
def test_nonsensical_values_are_refused_when_read(tmp_path, args, message):
    inp = write_docs(tmp_path / "docs.jsonl", 2)
    refused = run(parse_cmd(inp, tmp_path / "out", *args))
    assert refused.returncode == 2 and message in refused.stderr  # argparse's usage error, before any work
    assert not (tmp_path / "out").exists()


def test_config_values_of_the_wrong_shape_or_out_of_range_are_refused(tmp_path):
    from common.config import ConfigError, make_config
    from sampling.filter_rationales import FilterConfig
    from sampling.generate import GenerateConfig

    with pytest.raises(ConfigError, match="labels: expected one str"):
        make_config(FilterConfig, {"labels": ["a.jsonl", "b.jsonl"]})  # a YAML list for a text option
    from sampling.prefilter import PrefilterConfig

    with pytest.raises(ConfigError, match=r"threshold is a cosine similarity: it must be in \[-1, 1\]"):
        make_config(PrefilterConfig, {"threshold": 1.5})
    assert make_config(FilterConfig, {"tau": -1000.0}).tau == -1000.0  # keeps every rationale (the test chains)
    with pytest.raises(ConfigError, match="max_tokens must be at least 1"):
        make_config(GenerateConfig, {"max_tokens": -5})
    with pytest.raises(ConfigError, match="seed: expected one int"):
        make_config(FilterConfig, {"seed": True})


def test_output_is_required(tmp_path):
    inp = write_docs(tmp_path / "docs.jsonl", 2)
    for cmd in (parse_cmd(inp, tmp_path)[:-2], filter_cmd(inp, tmp_path)[:-2]):
        env = dict(os.environ, PYTHONPATH=str(REPO))  # run from tmp_path: the cwd an empty --output meant
        refused = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
        assert refused.returncode != 0 and "--output is required" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl"]  # nothing written into the cwd


class EchoingServer:
    """An OpenAI-compatible stand-in whose errors echo the request's headers (as some proxies do): 503
    once, then 400 with the headers in the body."""

    def __init__(self):
        import http.server
        import threading

        calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                calls.append(self.path)
                body = json.dumps({"error": "bad request", "echo": dict(self.headers)}).encode()
                self.send_response(503 if len(calls) == 1 else 400)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.calls = calls
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_no_secret_from_the_environment_or_a_url_reaches_a_file_or_the_log(tmp_path):
    key, password = "sk-test-5ecret-0penai-key-9876", "hunter2-url-pa55word"
    server = EchoingServer()
    try:
        inp = tmp_path / "prompts.jsonl"
        inp.write_text(json.dumps({"id": "p0", "prompt": "The cat"}) + "\n")
        out = tmp_path / "out"
        url = f"http://user:{password}@127.0.0.1:{server.port}/v1"
        cmd = [sys.executable, "-m", "sampling.generate", "--backend", "openai", "--model", "m", "--base-url", url]
        cmd += ["--input", str(inp), "--output", str(out), "--max-retries", "1", "--max-tokens", "4"]
        done = run(cmd, env=dict(os.environ, OPENAI_API_KEY=key))
    finally:
        server.close()
    assert done.returncode == 3, done.stderr  # the request failed: recorded in failures.jsonl
    failure = json.loads((out / "part-00000-of-00001.failures.jsonl").read_text())
    assert "HTTP 400" in failure["error"] and "Authorization" in failure["error"]  # the echo is there, redacted
    assert len(server.calls) == 2
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {"manifest.json", "part-00000-of-00001.settings.json"} <= {p.name for p in written}
    for text in [done.stderr, *(p.read_text(errors="replace") for p in written)]:
        assert key not in text and password not in text
        assert "Bearer sk-" not in text and "Basic dXNl" not in text  # nor a prefix cut by truncation, nor base64


def test_a_duplicate_id_in_another_shards_slice_is_refused(tmp_path):
    inp = write_docs(tmp_path / "docs.jsonl", 4)
    lines = inp.read_text().splitlines()
    inp.write_text("\n".join([*lines, lines[0]]) + "\n")  # d0 again, in shard 0 of 2: shard 1 never held it
    for i in range(2):  # each shard reads the whole input, so each refuses it
        refused = run(parse_cmd(inp, tmp_path / "out", "--shard-index", str(i), "--num-shards", "2"))
        assert (
            refused.returncode != 0
            and "duplicate input id 'd0' (" in refused.stderr
            and "docs.jsonl:5" in refused.stderr
        )


@pytest.mark.slow
def test_a_kill_at_any_point_of_a_model_stage_then_a_rerun_equals_a_clean_run(tmp_path, tiny_llama_dir):
    """The same as for parse_rationales, for sampling.generate on the hf backend (a tiny Llama, sampled)."""
    inp = tmp_path / "prompts.jsonl"
    inp.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"How many clips {i}?"}) + "\n" for i in range(5)))

    def generate_cmd(out: Path) -> list[str]:
        return [sys.executable, "-m", "sampling.generate", "--model", tiny_llama_dir, "--device", "cpu"] + [
            *("--input", str(inp), "--output", str(out), "--n", "2", "--temperature", "0.9"),
            *("--max-tokens", "8", "--batch-size", "2", "--seed", "7"),
        ]

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    clean = tmp_path / "clean"
    first = run(
        [sys.executable, "-c", KILLER, *generate_cmd(clean)[2:]], env=dict(env, KILL_AT="0", KILL_DIR=str(clean))
    )
    assert first.returncode == 0, first.stderr
    calls = int(first.stderr.rsplit("CALLS ", 1)[1].split()[0])
    for n in range(1, calls + 1):
        out = tmp_path / f"kill{n}"
        killed = run(
            [sys.executable, "-c", KILLER, *generate_cmd(out)[2:]], env=dict(env, KILL_AT=str(n), KILL_DIR=str(out))
        )
        assert killed.returncode == -signal.SIGKILL, (n, killed.stderr[-2000:])
        rerun = run(generate_cmd(out), env=env)
        assert rerun.returncode == 0, (n, rerun.stderr[-2000:])
        assert (out / SHARD).read_bytes() == (clean / SHARD).read_bytes(), n
        assert stable_manifest(out) == stable_manifest(clean), n
        assert files_in(out) == files_in(clean), n


# ----------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 128 KiB tmpfs, remountable larger; skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_full_disk_fails_the_stage_and_a_rerun_with_room_completes_it(tmp_path, small_disk):
    inp = tmp_path / "docs.jsonl"
    with open(inp, "w", encoding="utf-8") as fh:
        for i in range(120):
            text = f"Doc {i}. " + "Tom has apples and pears. " * 80
            rewrite = text.replace(" Tom has", " <BOT>He counts.<EOT> Tom has", 1)
            fh.write(json.dumps({"id": f"d{i}", "source": "t", "input": text, "output": rewrite}) + "\n")
    out = small_disk / "out"
    full = run(parse_cmd(inp, out, "--batch-size", "8"))
    assert full.returncode != 0 and "No space left on device" in full.stderr
    assert not (out / SHARD).exists()  # nothing half-written is ever presented as finished
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    done = run(parse_cmd(inp, out, "--batch-size", "8"))
    assert done.returncode == 0, done.stderr
    clean = tmp_path / "clean"
    assert run(parse_cmd(inp, clean, "--batch-size", "8")).returncode == 0
    assert (out / SHARD).read_bytes() == (clean / SHARD).read_bytes()
    assert stable_manifest(out) == stable_manifest(clean)


def test_an_option_added_since_a_directory_was_written_counts_as_its_default(tmp_path):
    inp = write_docs(tmp_path / "docs.jsonl", 3)
    out = tmp_path / "out"
    assert run(parse_cmd(inp, out)).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["config"]["allow_incomplete"]  # as written before the option existed
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert run(parse_cmd(inp, out)).returncode == 0
    refused = run(parse_cmd(inp, out, "--allow-incomplete", "true"))
    assert refused.returncode != 0 and "different settings (allow_incomplete" in refused.stderr
