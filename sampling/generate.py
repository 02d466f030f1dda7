"""Sample completions for a JSONL of prompts: the stage contract applied to plain generation.

Reads records {"id", "prompt"} where the prompt is raw text or a list of chat messages, and
writes {"id", "prompt", "completions": [n texts], "model"}. Sharded, resumable, failures
to <shard>.failures.jsonl (retried on rerun).

    python -m sampling.generate --input prompts.jsonl --output out/gen --n 4 --temperature 0.7
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from common.config import StageConfig, option, parse_config
from common.llm import LLMOptions, make_backend
from common.stage import Failed, run_stage, shard_finished


@dataclass
class GenerateConfig(StageConfig, LLMOptions):
    n: int = option(1, "samples per prompt")
    temperature: float = option(0.0, "0 = greedy")
    top_p: float = option(1.0, "nucleus sampling mass")
    max_tokens: int = option(256, "new tokens per sample")
    stop: list[str] = option([], "stop strings (comma-separated)")
    prompt_field: str = option("prompt", "input field holding the prompt (text or chat messages)")
    batch_size: int = option(32, "prompts per backend call")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(GenerateConfig, argv, __doc__)
    if shard_finished(cfg, "generate"):
        return 0
    llm = make_backend(cfg)

    def process(batch):
        completions = llm.generate(
            [r[cfg.prompt_field] for r in batch],
            n=cfg.n,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_tokens=cfg.max_tokens,
            stop=cfg.stop or None,
            seed=cfg.seed,
        )
        return [
            Failed(c.error)
            if c.error
            else [{"id": r["id"], "prompt": r[cfg.prompt_field], "completions": c.texts, "model": cfg.model}]
            for r, c in zip(batch, completions)
        ]

    return run_stage("generate", cfg, process, batch_size=cfg.batch_size, required=("id", cfg.prompt_field))


if __name__ == "__main__":
    sys.exit(main())
