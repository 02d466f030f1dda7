import json

import pytest

from common.artifacts import (
    BadRecordError,
    ReadStats,
    ShardWriter,
    input_files,
    read_jsonl,
    read_records,
    shard_files,
    shard_name,
    shard_slice,
    write_manifest,
)


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_shard_name_and_slices():
    assert shard_name(3, 8) == "part-00003-of-00008.jsonl"
    parts = [list(shard_slice(range(10), i, 3)) for i in range(3)]
    assert sorted(sum(parts, [])) == list(range(10)) and parts[1] == [1, 4, 7]


def test_writer_finalises_atomically_in_input_order(tmp_path):
    with ShardWriter(tmp_path, 0, 1) as w:
        w.write("a", 0, [{"id": "a-0"}, {"id": "a-1"}])
        w.write("b", 1, [])  # an input with no output is still done
        assert not (tmp_path / "part-00000-of-00001.jsonl").exists()
        w.write("c", 2, [{"id": "c-0"}])
        assert w.close(finalize=True, before_commit=lambda done: write_manifest(tmp_path, 0, 1, {"finished": done}))
    final = tmp_path / "part-00000-of-00001.jsonl"
    assert [r["id"] for r in lines(final)] == ["a-0", "a-1", "c-0"]
    assert sorted(p.name for p in tmp_path.glob("part-*")) == ["part-00000-of-00001.jsonl"]
    assert ShardWriter(tmp_path, 0, 1).finished
    (tmp_path / "manifests" / "part-00000-of-00001.json").unlink()  # a shard whose manifest is missing
    assert not ShardWriter(tmp_path, 0, 1).finished  # is not finished: the next run redoes it


def test_resume_cuts_torn_tail_and_skips_done(tmp_path):
    with ShardWriter(tmp_path, 0, 1) as w:
        w.write("a", 0, [{"id": "a"}])
        w.write("b", 1, [{"id": "b"}])
    # a kill between the data write and the journal line, then a torn journal line
    with open(tmp_path / "part-00000-of-00001.jsonl.partial", "a") as fh:
        fh.write('{"id": "c"}\n{"id": "d", "trunc')
    with open(tmp_path / "part-00000-of-00001.jsonl.journal", "a") as fh:
        fh.write('["c", 2, 1')
    with ShardWriter(tmp_path, 0, 1) as w:
        assert w.done_ids == {"a", "b"} and w.records_out == 2
        w.write("c", 2, [{"id": "c"}])
        w.close(finalize=True)
    assert [r["id"] for r in lines(tmp_path / "part-00000-of-00001.jsonl")] == ["a", "b", "c"]


def test_failures_keep_the_shard_open_and_retry_restores_order(tmp_path):
    with ShardWriter(tmp_path, 0, 1) as w:
        w.write("a", 0, [{"id": "a"}])
        w.fail("b", "HTTP 500 after 7 attempts", {"id": "b"})
        w.write("c", 2, [{"id": "c"}])
        assert not w.close(finalize=True)
    fails = lines(tmp_path / "part-00000-of-00001.failures.jsonl")
    assert fails[0]["id"] == "b" and "HTTP 500" in fails[0]["error"]
    assert not (tmp_path / "part-00000-of-00001.jsonl").exists()
    partial = (tmp_path / "part-00000-of-00001.jsonl.partial").read_text()
    assert "Error" not in partial and '"b"' not in partial  # a failure is never data
    with ShardWriter(tmp_path, 0, 1) as w:
        assert "b" not in w.done_ids
        w.write("b", 1, [{"id": "b"}])
        assert w.close(finalize=True)
    assert [r["id"] for r in lines(tmp_path / "part-00000-of-00001.jsonl")] == ["a", "b", "c"]
    assert not (tmp_path / "part-00000-of-00001.failures.jsonl").exists()


def test_bad_line_names_file_and_line_or_is_counted(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text('{"id": "1"}\n\n{"id": 2\n[1, 2]\n{"x": 1}\n{"id": "6"}\n')
    with pytest.raises(BadRecordError, match=r"in\.jsonl:3: invalid JSON"):
        list(read_records(f))
    stats = ReadStats()
    got = list(read_records(f, "skip", stats))
    assert [r["id"] for r in got] == ["1", "6"]
    assert stats.bad == 3 and stats.read == 2
    assert any("in.jsonl:4: expected a JSON object" in e for e in stats.bad_examples)
    assert any("in.jsonl:5: missing field(s) id" in e for e in stats.bad_examples)


def test_input_dir_refuses_unfinished_shards(tmp_path):
    (tmp_path / "part-00000-of-00002.jsonl").write_text('{"id": "a"}\n')
    (tmp_path / "part-00000-of-00002.failures.jsonl").write_text('{"id": "z"}\n')
    assert [p.name for p in input_files(tmp_path, allow_incomplete=True)] == ["part-00000-of-00002.jsonl"]
    with pytest.raises(RuntimeError, match="holds 1 of its 2 shards"):
        input_files(tmp_path)
    (tmp_path / "part-00001-of-00002.jsonl.partial").write_text("")
    with pytest.raises(RuntimeError, match="unfinished"):
        input_files(tmp_path)
    with pytest.raises(FileNotFoundError):
        input_files(tmp_path / "nope")


def test_several_inputs_comma_separated(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "part-00000-of-00001.jsonl").write_text(json.dumps({"id": name}) + "\n")
    assert [r["id"] for r in read_records(f"{tmp_path / 'a'},{tmp_path / 'b'}")] == ["a", "b"]


def test_compressed_jsonl_is_read_and_bad_lines_name_the_file(tmp_path):
    import gzip

    import zstandard

    body = '{"id": "1"}\n{"id": "2"}\n{"id": 3\n'
    zst, gz = tmp_path / "in.jsonl.zst", tmp_path / "in.jsonl.gz"
    zst.write_bytes(zstandard.ZstdCompressor().compress(body.encode()))
    gz.write_bytes(gzip.compress(body.encode()))
    for path in (zst, gz):
        assert [r["id"] for r in read_jsonl(path, "skip")] == ["1", "2"]
        with pytest.raises(BadRecordError, match=rf"{path.name}:3: invalid JSON"):
            list(read_jsonl(path))


def test_shard_files_gives_disjoint_tasks_covering_the_files():
    files = [f"f{i}" for i in range(30)]
    tasks = [shard_files(files, i, 8) for i in range(8)]
    assert sorted(f for t in tasks for f in t) == sorted(files)
    assert sum(len(t) for t in tasks) == 30 and {len(t) for t in tasks} == {3, 4}
    assert shard_files(files[:3], 0, 8) is None and shard_files(["one"], 0, 1) is None
