"""LLM backends behind one interface (see base.py): `hf` in-process, `openai` over HTTP (vLLM)."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import option
from common.llm.base import LLM, Branches, Completion, Prompt, TokenScores  # noqa: F401  (re-exported)
from common.models import DeviceOptions

__all__ = ["LLM", "Branches", "Completion", "Prompt", "TokenScores", "LLMOptions", "make_backend"]


@dataclass
class LLMOptions(DeviceOptions):
    """Options of one model endpoint; a stage that uses several models prefixes copies of these."""

    backend: str = option("hf", "'hf' (in-process transformers) or 'openai' (a vLLM / OpenAI-compatible server)")
    model: str = option("smollm2-135m-instruct", "registry name, Hub id or local path (the served name for openai)")
    base_url: str = option("", "openai: server URL(s), comma-separated; default $OPENAI_BASE_URL")
    dtype: str = option("auto", "hf: 'auto' (bf16 on GPU, fp32 on CPU), 'float32', 'bfloat16', 'float16'")
    max_batch_tokens: int = option(
        0, "hf: padded tokens per forward batch (0 = auto: 8192 on a CPU, 8192 per 16 GB of GPU memory)"
    )
    prefix_reuse: bool = option(
        True,
        "hf: compute a prefix shared by several continuations once, and keep the KV "
        "caches of prompts across calls (a trajectory's next round prefills only its new step)",
    )
    missing_head: str = option(
        "",
        "hf: a checkpoint saved without its output head (RATIONALYST's released model) "
        "is refused; 'base:<model>' uses that model's head instead (an approximation)",
    )
    kv_cache_tokens: int = option(32768, "hf: tokens of KV cache kept across calls, least recently used out (0 = none)")
    concurrency: int = option(64, "openai: requests in flight")
    max_retries: int = option(6, "openai: retries per request (exponential backoff) before it is a failure")
    request_timeout: float = option(600.0, "openai: seconds per request")
    unreachable_after: float = option(
        60.0, "openai: stop the stage when every connection has been refused for this long (a dead server)"
    )
    score_mode: str = option("echo", "openai: 'echo' (echo + logprobs) or 'prompt_logprobs' (vLLM extension)")
    tokenizer: str = option("", "openai: tokenizer for rendering chat frames locally (default: the model name)")


def make_backend(opts: LLMOptions) -> LLM:
    if opts.backend == "hf":
        from common.llm.hf import HFBackend

        return HFBackend(
            opts.model,
            device=opts.device,
            dtype=opts.dtype,
            max_batch_tokens=opts.max_batch_tokens,
            prefix_reuse=opts.prefix_reuse,
            kv_cache_tokens=opts.kv_cache_tokens,
            missing_head=opts.missing_head,
        )
    if opts.backend == "openai":
        from common.llm.openai import OpenAIBackend

        return OpenAIBackend(
            opts.model or None,
            base_url=opts.base_url or None,
            concurrency=opts.concurrency,
            max_retries=opts.max_retries,
            timeout=opts.request_timeout,
            unreachable_after=opts.unreachable_after,
            score_mode=opts.score_mode,
            tokenizer=opts.tokenizer or None,
        )
    raise ValueError(f"unknown backend {opts.backend!r}: use 'hf' or 'openai'")
