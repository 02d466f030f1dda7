"""Client for an OpenAI-compatible server, i.e. vLLM's (`vllm serve` / the api_server module).

* generate: /v1/chat/completions (chat prompts, with `n`) or /v1/completions (raw prompts).
* score:    the prompt is sent as token ids (prefix ids + continuation ids, tokenised by the
            server's own /tokenize) to /v1/completions with `echo` and `logprobs`
            (or `prompt_logprobs`), and the continuation's window is read back. Sending ids
            keeps one BOS and the exact window of the `hf` backend.
* Async with bounded concurrency (one event loop and one connection pool per backend, shared by every
  thread that calls it); retries with exponential backoff and jitter on refused
  connections, timeouts, 408/429/5xx; several base URLs in rotation. A request that still
  fails comes back with `error` set (the stage writes it to failures.jsonl).
* A dead server is not retried into the job's time limit: when every connection has been refused
  for `unreachable_after` seconds (60) with no answer from any server in between, the call raises
  ServerUnreachable, which ends the stage (its journal keeps what is done; the rest is retried by
  the next run), rather than writing every remaining input to failures.jsonl one backoff at a time.
URLs and key come from arguments or the environment (OPENAI_BASE_URL, comma-separated for
several servers; OPENAI_API_KEY), never from code.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import httpx

from common.llm.base import Branches, Completion, Prompt, TokenScores, cut_at_stop, is_chat, request_seed

log = logging.getLogger("procsup")
RETRY_STATUS = {408, 409, 425, 429} | set(range(500, 600))
RETRY_ERRORS = (httpx.TransportError,)  # connect/read/write errors, timeouts, protocol errors


class LLMRequestError(RuntimeError):
    pass


class ServerUnreachable(RuntimeError):
    """No server accepted a connection for `unreachable_after` seconds: the stage stops (not one failure)."""


def base_urls_from(value: str | Sequence[str] | None) -> list[str]:
    if not value:
        value = os.environ.get("OPENAI_BASE_URL", "")
    urls = [u.strip() for u in (value.split(",") if isinstance(value, str) else value) if u.strip()]
    if not urls:
        raise ValueError(
            "no server URL: set base_url in the recipe or OPENAI_BASE_URL in the environment "
            "(e.g. the URL that slurm/lib/vllm.sh exports)"
        )
    roots = []
    for u in urls:
        u = u.rstrip("/")
        roots.append(u[:-3] if u.endswith("/v1") else u)
    return roots


class OpenAIBackend:
    def __init__(
        self,
        model: str | None = None,
        base_url: str | Sequence[str] | None = None,
        api_key: str | None = None,
        concurrency: int = 64,
        max_retries: int = 6,
        timeout: float = 600.0,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        score_mode: str = "echo",
        tokenizer: str | None = None,
        unreachable_after: float = 60.0,
    ):
        if score_mode not in ("echo", "prompt_logprobs"):
            raise ValueError("score_mode must be 'echo' or 'prompt_logprobs'")
        self.roots = base_urls_from(base_url)
        self._rotation = itertools.cycle(range(len(self.roots)))
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.concurrency, self.max_retries, self.timeout = concurrency, max_retries, timeout
        self.backoff, self.backoff_max, self.score_mode = backoff, backoff_max, score_mode
        self.name = model
        self._bos: list[int] | None = None
        self.tokenizer_name, self._tokenizer = tokenizer, None
        self.unreachable_after = unreachable_after
        self._refused_since: float | None = None  # first refused connection since the last answer
        self._refused = 0
        self._start = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ transport
    def _run(self, make: callable[[httpx.AsyncClient], Awaitable]):
        """Run one call's coroutine on the backend's own event loop (a daemon thread, started on first use), with
        one client and one semaphore for every call: threads that call at once (inference with `streams`)
        share `concurrency` requests in flight and keep their connections alive between calls."""
        with self._start:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="openai-backend", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(self._call(make), self._loop).result()

    async def _call(self, make):
        if self._client is None:
            limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits)
            self._sem = asyncio.Semaphore(self.concurrency)
        if self.name is None:
            self.name = await self._model_name(self._client)
        return await make(self._client)

    async def _model_name(self, client) -> str:
        models = await self._request(client, "GET", "/v1/models")
        return models["data"][0]["id"]

    async def _request(
        self, client: httpx.AsyncClient, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        last = ""
        for attempt in range(self.max_retries + 1):
            root = self.roots[next(self._rotation)]
            try:
                async with self._sem:
                    resp = await client.request(method, root + path, json=payload, headers=headers)
                self._refused_since, self._refused = None, 0  # a server answered: it is up
                if resp.status_code == 200:
                    return resp.json()
                last = f"HTTP {resp.status_code} from {root}{path}: {resp.text[:300]}"
                if resp.status_code not in RETRY_STATUS:
                    raise LLMRequestError(last)
            except RETRY_ERRORS as exc:
                last = f"{type(exc).__name__} from {root}{path}: {exc}"
                if isinstance(exc, httpx.ConnectError):
                    self._note_refused(last)
            if attempt < self.max_retries:
                delay = min(self.backoff_max, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
                if self._refused_since is not None:  # wake up at the deadline rather than sleep past it
                    deadline = self._refused_since + self.unreachable_after
                    delay = max(0.05, min(delay, deadline - time.monotonic() + 0.05))
                log.warning("%s; retry %d/%d in %.1fs", last, attempt + 1, self.max_retries, delay)
                await asyncio.sleep(delay)
        raise LLMRequestError(f"gave up after {self.max_retries + 1} attempts: {last}")

    def _note_refused(self, last: str) -> None:
        now = time.monotonic()
        if self._refused_since is None:
            self._refused_since = now
        self._refused += 1
        if now - self._refused_since >= self.unreachable_after:
            raise ServerUnreachable(
                f"no server answered for {now - self._refused_since:.0f}s ({self._refused} refused connections, "
                f"last: {last}); the vLLM server(s) at {', '.join(self.roots)} are down: see their logs "
                "(slurm/lib/vllm.sh prints the tail). Rerun the stage to retry the inputs not done."
            )

    async def _gather_safe(self, coros: list[Awaitable], make_error):
        out = await asyncio.gather(*coros, return_exceptions=True)
        results = []
        for r in out:
            if isinstance(r, (LLMRequestError, KeyError, IndexError, ValueError, TypeError)):
                results.append(make_error(f"{type(r).__name__}: {r}"))
            elif isinstance(r, BaseException):
                raise r
            else:
                results.append(r)
        return results

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_tokens: int = 256,
        stop: Sequence[str] | None = None,
        seed: int = 0,
        logprobs: bool = False,
    ) -> list[Completion]:
        async def one(client, prompt: Prompt) -> Completion:
            body = {
                "model": self.name,
                "n": n,
                "temperature": temperature,
                "top_p": top_p,
                "max_tokens": max_tokens,
                "seed": request_seed(seed, prompt),
            }
            if stop:
                body["stop"] = list(stop)
            if is_chat(prompt):
                body.update(messages=prompt, logprobs=logprobs)
                resp = await self._request(client, "POST", "/v1/chat/completions", body)
                choices = sorted(resp["choices"], key=lambda c: c["index"])
                texts = [c["message"]["content"] or "" for c in choices]
                lps = [[t["logprob"] for t in c["logprobs"]["content"]] for c in choices] if logprobs else None
            else:
                body.update(prompt=prompt, logprobs=1 if logprobs else None)
                resp = await self._request(client, "POST", "/v1/completions", body)
                choices = sorted(resp["choices"], key=lambda c: c["index"])
                texts = [c["text"] for c in choices]
                lps = [c["logprobs"]["token_logprobs"] for c in choices] if logprobs else None
            return Completion(texts=[cut_at_stop(t, stop) for t in texts], token_logprobs=lps)

        return self._run(
            lambda client: self._gather_safe([one(client, p) for p in prompts], lambda e: Completion(error=e))
        )

    # ------------------------------------------------------------------ scoring
    async def _tokenize(self, client, prompt: Prompt, cache: dict) -> list[int]:
        key = repr(prompt)
        if key not in cache:
            cache[key] = asyncio.ensure_future(self._tokenize_uncached(client, prompt))
        return list(await cache[key])

    async def _tokenize_uncached(self, client, prompt: Prompt) -> list[int]:
        if is_chat(prompt):
            body = {"model": self.name, "messages": prompt, "add_generation_prompt": True, "add_special_tokens": False}
        else:
            body = {"model": self.name, "prompt": prompt, "add_special_tokens": False}
        return (await self._request(client, "POST", "/tokenize", body))["tokens"]

    async def _bos_ids(self, client) -> list[int]:
        if self._bos is None:
            resp = await self._request(
                client, "POST", "/tokenize", {"model": self.name, "prompt": "", "add_special_tokens": True}
            )
            self._bos = resp["tokens"][:1]
        return self._bos

    def render_chat(self, messages, add_generation_prompt: bool = True) -> str:
        """The served model's chat template, rendered here with its tokenizer (loaded once from
        `tokenizer`, else the model name, through the registry)."""
        if self._tokenizer is None:
            from common.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.tokenizer_name or self.name)
        return self._tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def score(self, pairs: Sequence[tuple[Prompt, str]]) -> list[TokenScores]:
        return self.score_branches([Branches(p, [("", c)]) for p, c in pairs])

    def score_branches(self, requests: Sequence[Branches]) -> list[TokenScores]:
        cache: dict[str, asyncio.Future] = {}

        async def one(client, prefix: Prompt, middle: str, cont: str) -> TokenScores:
            bos = await self._bos_ids(client)
            p_ids = await self._tokenize(client, prefix, cache)
            if bos and (not p_ids or p_ids[0] != bos[0]):
                p_ids = bos + p_ids
            m_ids = await self._tokenize(client, middle, cache) if middle else []
            c_ids = await self._tokenize(client, cont, cache) if cont else []
            if not c_ids:
                return TokenScores([], [])
            if not p_ids:
                raise ValueError("empty prefix and no BOS token: the first token has no context")
            ids, start = p_ids + m_ids + c_ids, len(p_ids) + len(m_ids)
            body = {"model": self.name, "prompt": ids, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 1}
            if self.score_mode == "prompt_logprobs":
                body.update(echo=False, logprobs=None, prompt_logprobs=0)
            resp = await self._request(client, "POST", "/v1/completions", body)
            choice = resp["choices"][0]
            if self.score_mode == "prompt_logprobs":
                entries = choice.get("prompt_logprobs") or resp.get("prompt_logprobs")
                window = [entries[j][str(ids[j])]["logprob"] for j in range(start, len(ids))]
            else:
                lps = choice["logprobs"]["token_logprobs"]
                if len(lps) < len(ids):
                    raise ValueError(f"server echoed {len(lps)} log-probs for a {len(ids)}-token prompt")
                window = lps[start : len(ids)]
            return TokenScores(token_ids=c_ids, logprobs=[float(x) for x in window])

        jobs = [(r.prefix, m, c) for r in requests for m, c in r.branches]
        return self._run(
            lambda client: self._gather_safe([one(client, *job) for job in jobs], lambda e: TokenScores(error=e))
        )
