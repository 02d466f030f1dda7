"""Supervised fine-tuning, causal (the rationale model) or seq2seq (REFINER's generator and critic).

causal  (rationalyst.md 5): user turn = `--prompt-field` (preceding text), assistant turn =
        `--target-field` (rationale). The conversation is rendered once with the chat template;
        the loss covers the assistant turn only (the reference rendered the target separately
        and trained on a second BOS and header). Exactly one BOS.
seq2seq (refiner.md 3): encoder input = `--prompt-field`, decoder target = `--target-field`;
        pads masked from the loss (the reference counted them).

Defaults follow the paper's recipe: lr 2e-5, cosine, warmup 3%, effective batch 32 (batch 2 x
accumulation 16 on one device; use 8 on two), max length 1024, weight decay 0, bf16 on GPU.
Dev loss every epoch, the best checkpoint kept (`<output>/final`), a rerun resumes from the
newest checkpoint. LoRA with `--lora true`. Several GPUs: `accelerate launch --config_file
configs/accelerate/fsdp.yaml -m training.finetune ...`.

    python -m training.finetune --train runs/filtered/train --dev runs/filtered/dev --output runs/rationalyst-model
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from common.artifacts import git_commit, package_versions, read_records, write_json_atomic
from common.config import option, parse_config
from common.models import resolve
from common.rationales import triples
from common.stage import log, setup_logging
from common.training import (
    FsdpLaunch,
    LoraOptions,
    causal_example,
    collate,
    fsdp_launch,
    grad_accum_for,
    packed_collator,
    seq2seq_example,
    trainable,
    use_bf16,
    use_packed_attention,
)


@dataclass
class FinetuneConfig(LoraOptions):
    """Fine-tune a causal or seq2seq model on JSONL records."""

    train: str = option("", "training records: JSONL file or directory (e.g. filter_rationales' train/)")
    noisy: str = option(
        "",
        "more training records mixed in (the REFINER reference's --noisy-file, refiner.md 3), "
        "e.g. critic_data's refine/ (x + wrong z + feedback -> gold z): the warm start then "
        "already reads feedback",
    )
    dev: str = option("", "dev records for the per-epoch loss and best-checkpoint choice (optional)")
    output: str = option("", "output directory: checkpoints/, final/ (the best model), metrics.json")
    mode: str = option("causal", "'causal' (chat SFT) or 'seq2seq' (encoder-decoder)")
    model: str = option(
        "smollm2-135m-instruct",
        "base model: registry name, Hub id or path (paper: meta-llama/Meta-Llama-3-8B-Instruct)",
    )
    prompt_field: str = option("preceding", "field for the user turn (causal) or encoder input (seq2seq)")
    target_field: str = option("rationale", "field for the assistant turn (causal) or decoder target (seq2seq)")
    system: str = option("", "causal: optional system message")
    epochs: float = option(20.0, "epochs at most (rationalyst.md 5: 20; the best dev epoch is kept)")
    max_steps: int = option(0, "stop after this many optimizer steps (0 = by epochs)")
    lr: float = option(2e-5, "peak learning rate")
    scheduler: str = option("cosine", "learning-rate schedule")
    warmup_ratio: float = option(0.03, "share of steps for linear warmup")
    weight_decay: float = option(0.0, "AdamW weight decay")
    batch_size: int = option(2, "examples per device per step")
    grad_accum: int = option(16, "gradient accumulation steps (effective batch = batch x accum x devices)")
    effective_batch: int = option(
        0,
        "when set, the accumulation is derived from it: effective_batch / (batch_size x processes), so the "
        "batch stays the same on any GPU count (rationalyst.md 5: 32); 0 = use --grad-accum",
    )
    max_length: int = option(1024, "tokens per example (truncated)")
    patience: int = option(3, "stop after this many evaluations without a better dev loss (0 = never)")
    eval_steps: int = option(0, "evaluate and save every N steps (0 = every epoch)")
    precision: str = option("auto", "'auto' (bf16 on a GPU that has it, else fp32), 'bf16', 'fp32'")
    seed: int = option(42, "seed for data order and initialisation")
    gradient_checkpointing: bool = option(False, "trade compute for memory")
    max_train: int = option(
        0, "train on a seeded subset of this many --train records (0 = all): the number-of-rationales ablation"
    )
    padding_free: bool = option(
        True,
        "causal: pack each batch's rows into one sequence, position ids reset per row, attention per row "
        "(flash-attn's varlen kernel, else one causal SDPA per row): no pads computed, the loss equals the padded one",
    )


def load_examples(path: str, cfg: FinetuneConfig, tok, counts: dict, subsample: int = 0) -> list[dict]:
    """Records from JSONL; rows in RATIONALYST's released layout ({preceeding (sic), rationale, following},
    no id) are read as triples: ids from the content, exact duplicates dropped and counted."""
    rows = list(read_records(path, "error", required=()))
    if rows and "preceeding" in rows[0] and "preceding" not in rows[0]:
        rows = list(triples(rows, counts))
    for n, r in enumerate(rows, 1):
        missing = [f for f in (cfg.prompt_field, cfg.target_field) if f not in r]
        if missing:
            raise SystemExit(f"{path}: record {n}: missing field(s) {', '.join(missing)}")
    if subsample and len(rows) > subsample:  # the number-of-rationales ablation: a seeded subset, input order kept
        keep = sorted(random.Random(cfg.seed).sample(range(len(rows)), subsample))
        rows = [rows[i] for i in keep]
    if cfg.mode == "causal":
        return [causal_example(tok, r[cfg.prompt_field], r[cfg.target_field], cfg.system, cfg.max_length) for r in rows]
    return [seq2seq_example(tok, r[cfg.prompt_field], r[cfg.target_field], cfg.max_length) for r in rows]


# ----------------------------------------------------------------------------- model


def load_model(cfg: FinetuneConfig, fsdp: FsdpLaunch | None = None):
    """Loaded after the distributed state exists (main), so that under FSDP with cpu_ram_efficient_loading
    only rank 0 reads the weights (the others build the model on the meta device; sync_module_states
    broadcasts them): before, every rank held a full fp32 copy in CPU memory."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    path = resolve(cfg.model)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # no new token: the reference's added <pad> row was never initialised
    auto = AutoModelForCausalLM if cfg.mode == "causal" else AutoModelForSeq2SeqLM
    model = auto.from_pretrained(path, dtype=torch.float32)
    if fsdp and fsdp.activation_checkpointing:
        model.config.use_cache = False  # FSDP checkpoints each wrapped layer: not a second time here
        if cfg.gradient_checkpointing:
            log.info("finetune: --gradient-checkpointing left to FSDP's activation checkpointing")
    elif cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.padding_free and cfg.mode == "causal":
        model.config.use_cache = False  # with a cache the packed rows would see each other (masking_utils)
        log.info(
            "finetune: padding-free batches with %s attention", use_packed_attention(model, use_bf16(cfg.precision))
        )
    return trainable(model, cfg, seq2seq=cfg.mode == "seq2seq"), tok


def latest_checkpoint(out: Path) -> str | None:
    """The newest complete checkpoint. The Trainer writes trainer_state.json last, so a checkpoint without it
    was cut off mid-save (a kill, the time limit) and is skipped, not resumed into."""
    ckpts = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    complete = [c for c in ckpts if (c / "trainer_state.json").is_file()]
    for c in ckpts[len(complete) :] if complete and ckpts[-1] != complete[-1] else []:
        log.warning("finetune: %s has no trainer_state.json (its save was cut off); skipped", c)
    return str(complete[-1]) if complete else None


def save_final(trainer, tok, final: Path, lora: bool) -> None:
    """final/ as a plain transformers model, in bf16 when trained in bf16 (half the bytes), written by the
    main process into final.tmp and renamed, so a kill never leaves a truncated final/. Under FSDP the
    checkpoints stay sharded; only here is the full state dict gathered (to rank 0's CPU)."""
    acc = trainer.accelerator
    if trainer.is_fsdp_enabled:
        acc.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    state_dict = acc.get_state_dict(trainer.model)  # under FSDP: a collective, on every rank
    acc.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return
    model = acc.unwrap_model(trainer.model)
    if lora:
        model = model.merge_and_unload()  # a plain model: inference needs no peft
        state_dict = None
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    state_dict = state_dict or model.state_dict()
    if trainer.args.bf16:  # trained in bf16: saved in bf16 (a CPU run in fp32 keeps fp32)
        state_dict = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state_dict.items()}
    model.save_pretrained(tmp, state_dict=state_dict)
    tok.save_pretrained(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(FinetuneConfig, argv, __doc__)
    if cfg.mode not in ("causal", "seq2seq"):
        raise SystemExit("--mode must be 'causal' or 'seq2seq'")
    if not cfg.train or not cfg.output:
        raise SystemExit("--train and --output are required")
    if cfg.freeze_encoder and cfg.mode != "seq2seq":
        raise SystemExit("--freeze-encoder is for --mode seq2seq")
    setup_logging()
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments, set_seed

    set_seed(cfg.seed)
    out = Path(cfg.output)
    fsdp = fsdp_launch()
    if fsdp and cfg.lora:
        raise SystemExit(
            "--lora true under FSDP is not supported: the adapters would be merged into sharded parameters. "
            "Fine-tune LoRA on one GPU (NUM_GPUS=1; an 8B model with LoRA fits in 80 GB) or train all weights"
        )
    strategy = "steps" if cfg.eval_steps else "epoch"
    processes = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch / torchrun
    accum = grad_accum_for(cfg.effective_batch, cfg.batch_size, processes) if cfg.effective_batch else cfg.grad_accum
    log.info("finetune: batch %d x accumulation %d x %d process(es)", cfg.batch_size, accum, processes)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float < 1 is a ratio
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=accum,
        eval_strategy=strategy if cfg.dev else "no",
        save_strategy=strategy,
        eval_steps=cfg.eval_steps or None,
        save_steps=cfg.eval_steps or None,
        save_total_limit=3,
        load_best_model_at_end=bool(cfg.dev),
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        bf16=use_bf16(cfg.precision),
        logging_steps=1,
        report_to="none",
        seed=cfg.seed,
        use_cpu=not torch.cuda.is_available(),  # also what makes several CPU processes one distributed run
        data_seed=cfg.seed,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=None,
    )
    args.device  # noqa: B018  (sets up the distributed state before the model is loaded: see load_model)
    model, tok = load_model(cfg, fsdp)
    counts: dict[str, int] = {"duplicates": 0}
    train = load_examples(cfg.train, cfg, tok, counts, cfg.max_train)
    train += load_examples(cfg.noisy, cfg, tok, counts) if cfg.noisy else []
    dev = load_examples(cfg.dev, cfg, tok, counts) if cfg.dev else None
    if dev is not None and not dev:  # e.g. filter_rationales' 5% of a few kept rationales rounds to none
        log.warning("finetune: %s holds no dev records: training without evaluation; final/ is the last step", cfg.dev)
        dev = None
    if dev is None:
        args.eval_strategy, args.load_best_model_at_end = "no", False
    callbacks = [EarlyStoppingCallback(cfg.patience)] if dev and cfg.patience else []
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=dev,
        data_collator=packed_collator() if cfg.padding_free and cfg.mode == "causal" else collate(tok.pad_token_id),
        callbacks=callbacks,
    )
    resume = latest_checkpoint(out)
    if resume:
        log.info("finetune: resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)
    final = out / "final"
    save_final(trainer, tok, final, cfg.lora)
    if not trainer.is_world_process_zero():
        return 0  # rank 0 writes metrics.json, after final/ (save_final ends with a barrier)
    history = [h for h in trainer.state.log_history if "eval_loss" in h]
    write_json_atomic(  # last: the sbatch file skips a run whose metrics.json exists
        out / "metrics.json",
        {
            "config": dataclasses.asdict(cfg),
            "git_commit": git_commit(),
            "packages": package_versions(),
            "processes": processes,
            "gradient_accumulation": accum,
            "train_examples": len(train),
            "dev_examples": len(dev or []),
            "duplicates_dropped": counts["duplicates"],
            "train_loss": result.training_loss,
            "steps": trainer.state.global_step,
            "dev_loss": history,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "resumed_from": resume,
        },
    )
    log.info(
        "finetune: %d steps; best dev loss %s; model in %s",
        trainer.state.global_step,
        min((h["eval_loss"] for h in history), default=None),
        final,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
