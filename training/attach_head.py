"""A checkpoint saved without its output head, written again as a complete causal LM with a borrowed head,
so that a vLLM server (which loads only complete checkpoints) can serve it: RATIONALYST's released model
(`Dongwei/Rationalyst_reasoning_datasets`, saved as a bare `LlamaModel`) for one. The head is the base
model's (`--missing-head base:<model>`; rows for tokens the base lacks, such as the added pad token, get the
mean row): an approximation, stated in the output's manifest.json and in the manifest of every stage that
then names this directory as a model.

    python -m training.attach_head --model Dongwei/Rationalyst_reasoning_datasets \\
        --missing-head base:meta-llama/Meta-Llama-3-8B-Instruct --output runs/released_rationalyst
    python -m common.llm.vllm_server serve --model runs/released_rationalyst --served-name rationalyst
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import write_manifest
from common.config import StageConfig, option, parse_config
from common.models import load_causal_lm
from common.stage import log, require_output, setup_logging, stage_manifest


@dataclass
class AttachHeadConfig(StageConfig):
    model: str = option("", "the checkpoint without its output head: Hub id or local path")
    missing_head: str = option("", "base:<model>: the model whose output head is borrowed (required)")
    dtype: str = option("bfloat16", "dtype of the weights written (the released model's fp32 shards are 30 GB)")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(AttachHeadConfig, argv, __doc__)
    require_output(cfg)
    if not cfg.model or not cfg.missing_head.startswith("base:"):
        raise SystemExit("--model and --missing-head base:<model> are required")
    setup_logging()
    started = time.time()
    model, tok = load_causal_lm(cfg.model, "cpu", cfg.dtype, cfg.missing_head)
    if getattr(model, "borrowed_head", None) is None:
        raise SystemExit(f"{cfg.model} has its own output head: serve it as it is, nothing to attach")
    out = Path(cfg.output)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    counts = {"parameters": sum(p.numel() for p in model.parameters()), "vocab": model.config.vocab_size}
    write_manifest(out, 0, 1, stage_manifest("attach_head", cfg, counts, started))
    log.info("attach_head: %s with %s's output head in %s", cfg.model, model.borrowed_head, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
