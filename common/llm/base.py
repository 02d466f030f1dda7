"""The one interface every stage uses to talk to a language model (DESIGN.md, "LLM backends").

A prompt is either raw text or a list of chat messages ({"role", "content"}).

generate(prompts, n, temperature, top_p, max_tokens, stop, seed, logprobs) -> list[Completion]
score(pairs) -> list[TokenScores]   (pairs of (prefix, continuation); teacher-forced log-probs
                                     of the continuation's tokens given the prefix)
score_branches(requests)            (one prefix, several (middle, continuation) branches: the
                                     "with" and "without rationale" variants after one text)
render_chat(messages) -> str        (the model's chat template, for callers that split a frame)

Token-level semantics shared by all backends, so that their numbers agree:
  * a chat prefix is rendered with the model's chat template and the generation prompt;
  * the sequence is tokens(prefix) + tokens(continuation), each tokenised on its own, with
    exactly one BOS at the start when the model uses one (never two: see rationalyst.md 7.9);
  * the scored window is exactly the continuation's tokens (rationalyst.md 4.2 off-by-one).
Per-request failures (a server that keeps failing) come back with `error` set; the caller
records them in failures.jsonl and never writes them as data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Messages = list[dict[str, str]]
Prompt = str | Messages


@dataclass
class Completion:
    texts: list[str] = field(default_factory=list)
    token_logprobs: list[list[float]] | None = None  # per sample, per generated token (if asked)
    error: str | None = None


@dataclass
class TokenScores:
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))

    @property
    def mean(self) -> float:
        return self.total / len(self.logprobs) if self.logprobs else float("nan")


@dataclass
class Branches:
    """One prefix, several (middle, continuation) branches; each branch's sequence is
    tokens(prefix) + tokens(middle) + tokens(continuation), and only the continuation is scored.
    The prefix is computed once for all branches where the backend can (`hf`)."""

    prefix: Prompt
    branches: list[tuple[str, str]]


class LLM(Protocol):
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
    ) -> list[Completion]: ...

    def score(self, pairs: Sequence[tuple[Prompt, str]]) -> list[TokenScores]: ...

    def score_branches(self, requests: Sequence[Branches]) -> list[TokenScores]: ...

    def render_chat(self, messages: Messages, add_generation_prompt: bool = True) -> str: ...


def request_seed(seed: int, prompt: Prompt) -> int:
    """A per-request seed from the run seed and the prompt itself, so that samples do not
    depend on batch composition or order (a resumed run samples what a one-shot run did)."""
    digest = hashlib.sha256(f"{seed}\x00{json.dumps(prompt, sort_keys=True)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """OpenAI semantics: the text ends before the first stop string, which is not included."""
    if not stop:
        return text
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def is_chat(prompt: Any) -> bool:
    return isinstance(prompt, list)
