import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import StageConfig
from common.stage import EXIT_FAILURES, Failed, run_stage
from tests.conftest import kill_mid_shard

REPO = Path(__file__).resolve().parents[1]


def write_inputs(path: Path, n: int, bad_line: int | None = None) -> Path:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write("{not json\n" if i == bad_line else json.dumps({"id": f"r{i}", "x": i}) + "\n")
    return path


def double(batch):
    return [[{"id": r["id"], "y": 2 * r["x"]}] for r in batch]


def test_shards_cover_inputs_once_and_manifest_merges(tmp_path):
    inp = write_inputs(tmp_path / "in.jsonl", 10)
    for i in range(3):
        cfg = StageConfig(input=str(inp), output=str(tmp_path / "out"), shard_index=i, num_shards=3)
        assert run_stage("double", cfg, double, batch_size=2) == 0
    ys = sorted(
        json.loads(l)["y"] for p in sorted((tmp_path / "out").glob("part-*.jsonl")) for l in p.read_text().splitlines()
    )
    assert ys == [2 * i for i in range(10)]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["shards_finished"] == 3 and manifest["counts"]["in"] == 10 and manifest["counts"]["out"] == 10
    assert manifest["inputs"][0]["sha256"] and manifest["inputs"][0]["bytes"] == inp.stat().st_size
    assert manifest["config"]["num_shards"] == 3 and "torch" in manifest["packages"]
    # a finished shard is skipped on rerun
    cfg = StageConfig(input=str(inp), output=str(tmp_path / "out"), shard_index=0, num_shards=3)
    assert run_stage("double", cfg, lambda b: pytest.fail("redone"), batch_size=2) == 0


def test_bad_record_errors_or_is_counted(tmp_path):
    inp = write_inputs(tmp_path / "in.jsonl", 5, bad_line=2)
    cfg = StageConfig(input=str(inp), output=str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"in\.jsonl:3"):
        run_stage("double", cfg, double)
    cfg = StageConfig(input=str(inp), output=str(tmp_path / "b"), on_bad_record="skip")
    assert run_stage("double", cfg, double) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["counts"]["bad_records"] == 1 and manifest["counts"]["out"] == 4
    assert "in.jsonl:3" in manifest["shards"][0]["bad_record_examples"][0]


def test_failures_are_recorded_then_retried(tmp_path):
    inp = write_inputs(tmp_path / "in.jsonl", 6)
    cfg = StageConfig(input=str(inp), output=str(tmp_path / "out"))
    flaky = lambda batch: [Failed("HTTP 503") if r["x"] % 3 == 1 else [{"id": r["id"]}] for r in batch]  # noqa
    assert run_stage("flaky", cfg, flaky, batch_size=2) == EXIT_FAILURES
    failures = (tmp_path / "out" / "part-00000-of-00001.failures.jsonl").read_text()
    assert [json.loads(l)["id"] for l in failures.splitlines()] == ["r1", "r4"]
    seen = []
    assert run_stage("flaky", cfg, lambda b: seen.extend(r["id"] for r in b) or double(b)) == 0
    assert seen == ["r1", "r4"]  # only the failures are redone
    out = (tmp_path / "out" / "part-00000-of-00001.jsonl").read_text().splitlines()
    assert [json.loads(l)["id"] for l in out] == [f"r{i}" for i in range(6)]


def _generate_cmd(model_dir, inp, out):
    return [
        sys.executable,
        "-m",
        "sampling.generate",
        "--model",
        model_dir,
        "--device",
        "cpu",
        "--input",
        str(inp),
        "--output",
        str(out),
        "--n",
        "2",
        "--temperature",
        "0.9",
        "--max-tokens",
        "40",
        "--batch-size",
        "3",
        "--seed",
        "7",
    ]


def test_sigkill_then_resume_is_byte_identical(tmp_path, tiny_llama_dir):
    inp = tmp_path / "prompts.jsonl"
    with open(inp, "w") as fh:
        for i in range(30):
            fh.write(
                json.dumps({"id": f"p{i}", "prompt": [{"role": "user", "content": f"How many clips {i}?"}]}) + "\n"
            )
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    subprocess.run(
        _generate_cmd(tiny_llama_dir, inp, tmp_path / "oneshot"), check=True, env=env, cwd=REPO, capture_output=True
    )

    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _generate_cmd(tiny_llama_dir, inp, out), env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    kill_mid_shard(proc, out / "part-00000-of-00001.jsonl.journal", 6)
    assert not (out / "part-00000-of-00001.jsonl").exists()
    rerun = subprocess.run(
        _generate_cmd(tiny_llama_dir, inp, out), check=True, env=env, cwd=REPO, capture_output=True, text=True
    )
    done = int(rerun.stderr.split("resuming ", 1)[1].split(": ", 1)[1].split()[0])
    assert done >= 6  # the rerun resumed (run history is logged, not in the manifest)
    one = (tmp_path / "oneshot" / "part-00000-of-00001.jsonl").read_bytes()
    assert (out / "part-00000-of-00001.jsonl").read_bytes() == one
    assert len(one.splitlines()) == 30
    oneshot = json.loads((tmp_path / "oneshot" / "manifest.json").read_text())["counts"]
    assert json.loads((out / "manifest.json").read_text())["counts"] == oneshot


def test_resume_with_other_settings_is_refused(tmp_path):
    from dataclasses import dataclass, field

    @dataclass
    class Cfg(StageConfig):
        factor: int = 2
        batch_size: int = field(default=4)

    inp = write_inputs(tmp_path / "in.jsonl", 4)
    assert run_stage("double", Cfg(input=str(inp), output=str(tmp_path / "o")), double) == 0
    assert run_stage("double", Cfg(input=str(inp), output=str(tmp_path / "o"), batch_size=8), double) == 0
    with pytest.raises(SystemExit, match=r"different settings \(factor"):
        run_stage("double", Cfg(input=str(inp), output=str(tmp_path / "o"), factor=3), double)


def test_finished_shard_exits_before_loading_a_model(tmp_path, tiny_llama_dir, monkeypatch):
    from sampling import generate

    inp = tmp_path / "p.jsonl"
    inp.write_text(json.dumps({"id": "a", "prompt": "The cat"}) + "\n")
    args = ["--input", str(inp), "--output", str(tmp_path / "out"), "--model", tiny_llama_dir, "--max-tokens", "2"]
    assert generate.main(args) == 0

    def no_model(*a, **kw):
        raise AssertionError("a model was loaded for a finished shard")

    monkeypatch.setattr(generate, "make_backend", no_model)
    assert generate.main(args) == 0
    with pytest.raises(SystemExit, match="different settings"):
        generate.main(args + ["--temperature", "0.5"])


def test_a_borrowed_output_head_is_stated_in_the_manifest():
    import time
    from dataclasses import dataclass

    from common.llm import LLMOptions
    from common.stage import stage_manifest

    @dataclass
    class Cfg(StageConfig, LLMOptions):
        pass

    plain = stage_manifest("s", Cfg(), {}, time.time())
    assert "approximations" not in plain
    borrowed = stage_manifest("s", Cfg(missing_head="base:meta-llama/Meta-Llama-3-8B-Instruct"), {}, time.time())
    assert borrowed["approximations"] == [
        "missing_head = base:meta-llama/Meta-Llama-3-8B-Instruct: a checkpoint saved without its output head "
        "scores with meta-llama/Meta-Llama-3-8B-Instruct's head"
    ]
