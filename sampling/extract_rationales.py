"""Ask an LLM to rewrite documents with implicit rationales inserted as <BOT>...<EOT>
(rationalyst.md section 3).

Two prompt families (common/prompts.py):
  --datasets gsm8k,ecqa,math,mmlu_pro   reasoning data sets, documents built per section 3.2
                                        (name=PATH for a local file in the Hub rows' format;
                                        gsm_symbolic for offline GSM8K-style problems)
  --input runs/prefilter                web documents (prefilter output: {"id", "text", ...})
Two modes:
  rewrite   (default, the paper's) the LLM rewrites the whole document with rationales inserted;
  per_step  (an extension for small extractors) the stage splits the document into steps itself
            and asks for one short rationale per position, given only the text so far (never the
            step it is scored on), then inserts them: faithful by construction, and it generates
            only rationales.
Greedy decoding (seed 14, as the reference). Writes {"id", "source", "family", "input", "output",
"model"}. A request that fails is recorded in failures.jsonl and retried by the next run; it is
never written as an output (the reference wrote its error message as the rewrite).

    python -m sampling.extract_rationales --datasets gsm8k --output runs/extract --backend openai \\
        --model meta-llama/Meta-Llama-3-8B-Instruct
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from common import prompts
from common.config import StageConfig, option, parse_config
from common.llm import LLMOptions, make_backend
from common.stage import Failed, run_stage, shard_finished
from common.tasks.rationalyst import documents


@dataclass
class ExtractConfig(StageConfig, LLMOptions):
    datasets: list[str] = option(
        [], "reasoning data sets to mine (datasets family); empty = read --input web documents (web family)"
    )
    limit_per_dataset: int = option(0, "rows per data set (0 = all)")
    mode: str = option(
        "rewrite",
        "'rewrite' (the paper: the LLM rewrites the document) or 'per_step' "
        "(one rationale per step position; for small extractors)",
    )
    max_steps: int = option(16, "per_step: rationale positions per document, from the start")
    step_max_tokens: int = option(48, "per_step: new tokens per rationale")
    max_tokens: int = option(3000, "new tokens per rewrite (rationalyst.md 3.1: 3000)")
    temperature: float = option(0.0, "0 = greedy, as the reference")
    seed: int = option(14, "sampling seed (the reference's)")
    batch_size: int = option(16, "documents per backend call")


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(ExtractConfig, argv, __doc__)
    if not cfg.datasets and not cfg.input:
        raise SystemExit("give --datasets (reasoning data sets) or --input (web documents from prefilter)")
    if shard_finished(cfg, "extract_rationales"):
        return 0
    family = "datasets" if cfg.datasets else "web"
    build = prompts.datasets_prompt if family == "datasets" else prompts.web_prompt
    if cfg.mode not in ("rewrite", "per_step"):
        raise SystemExit("--mode must be 'rewrite' or 'per_step'")
    llm = make_backend(cfg)

    def output(d: dict, text: str) -> list[dict]:
        return [
            {
                "id": d["id"],
                "source": d.get("source"),
                "family": family,
                "mode": cfg.mode,
                "input": d["text"],
                "output": text,
                "model": cfg.model,
            }
        ]

    def rewrite(batch: list[dict]) -> list:
        completions = llm.generate(
            [build(d["text"]) for d in batch], temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed
        )
        return [Failed(c.error) if c.error else output(d, c.texts[0]) for d, c in zip(batch, completions)]

    def per_step(batch: list[dict]) -> list:
        steps = [prompts.split_steps(d["text"]) for d in batch]
        jobs = [(k, i) for k, st in enumerate(steps) for i in range(1, min(len(st), cfg.max_steps + 1))]
        completions = llm.generate(
            [prompts.step_prompt("".join(steps[k][:i])) for k, i in jobs],
            temperature=cfg.temperature,
            max_tokens=cfg.step_max_tokens,
            stop=["\n"],
            seed=cfg.seed,
        )
        rationale = {job: c for job, c in zip(jobs, completions)}
        results = []
        for k, d in enumerate(batch):
            errors = [c.error for (j, _), c in rationale.items() if j == k and c.error]
            if errors:
                results.append(Failed(errors[0]))
                continue
            text = steps[k][0]
            for i, step in enumerate(steps[k][1:], 1):
                r = (
                    " ".join(rationale[(k, i)].texts[0].replace("<BOT>", "").replace("<EOT>", "").split())
                    if (k, i) in rationale
                    else ""
                )
                text += (f"<BOT>{r}<EOT> " if r else "") + step
            results.append(output(d, text))
        return results

    records = documents(cfg.datasets, cfg.limit_per_dataset) if cfg.datasets else None
    return run_stage(
        "extract_rationales",
        cfg,
        per_step if cfg.mode == "per_step" else rewrite,
        records=records,
        batch_size=cfg.batch_size,
        required=("id", "text"),
    )


if __name__ == "__main__":
    sys.exit(main())
