"""REFINER training (refiner.md 4): the generator learns to refine its own answers with feedback.

For each batch and each turn t = 1..T (`--turns`, paper 3):
  1. loss_t = cross-entropy of the gold z given the current input (turn 1: x);
  2. exploration (`--exploration sampled`, the paper): `--exp-num` samples (top-p 0.5) from the generator
     for the current input, in eval mode (the reference sampled with dropout on); one is chosen at
     random (the paper's "critic randomly selects one hypothesis"; the reference's zero regret always
     kept the last). `greedy`: the generator's greedy output (the paper's "- exploration" ablation,
     refiner.md 8.2, as read here); `none`: no hypotheses, turn 1 only (x -> z);
  3. the oracle critic (task.critique) gives feedback on it;
  4. next input = refine_input(x, sample, feedback) (common.tasks.refiner.format; feedback does not
     accumulate, as the reference).
loss = sum over turns (pads masked; the reference counted them), / grad accumulation; AdamW,
linear schedule without warmup, clipping at 1.0.

Fixed against the reference (9.1): the warm-start checkpoint `--model` is actually loaded (the
reference always loaded google/flan-t5-base); the turn count is an int (the reference passed a
tuple / string); no wandb. After each epoch: greedy exact match on dev without a critic (as the
reference), the best checkpoint saved to <output>/best/, and the training state to
<output>/last/ (a rerun resumes after the last finished epoch); early stopping after `--patience`
evaluations without improvement. `--lora true` (refiner.md 6: r 8, alpha 32, dropout 0.1 in the paper
recipe), merged on save.

    python -m training.train_refiner --task mwp --input ../shared/data/svamp/mawps-asdiv-a_svamp_train.csv \
        --dev-fraction 0.1 --model runs/mwp/warm/final --output runs/mwp/refiner
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from common.artifacts import write_json_atomic, write_manifest
from common.config import StageConfig, option, parse_config
from common.models import DeviceOptions, pick_device
from common.registry import lookup
from common.stage import log, setup_logging, stage_manifest
from common.tasks import refiner as refiner_tasks
from common.tasks.refiner.format import refine_input
from common.tasks.refiner.seq2seq import encode, generate, load_seq2seq
from common.training import IGNORE, LoraOptions, restore_rng_state, rng_state, target_ids, trainable


@dataclass
class TrainRefinerConfig(StageConfig, LoraOptions, DeviceOptions):
    task: str = option("mwp", "REFINER task: mwp, snlr or moral_stories")
    dev: str = option("", "dev data file (task format); empty: hold out --dev-fraction of --input")
    dev_fraction: float = option(
        0.1,
        "share of --input held out as dev when --dev is empty (same split "
        "as training.refiner_examples with the same seed)",
    )
    model: str = option("", "warm-start generator checkpoint (training.finetune's final/), registry name or Hub id")
    turns: int = option(3, "turns T per example (refiner.md 4: 3; the reference README used 4)")
    exploration: str = option(
        "sampled",
        "hypotheses for the next turn: sampled (the paper: --exp-num top-p samples, one chosen at random), "
        "greedy (one greedy output; the '- exploration' ablation, refiner.md 8.2) or none (no hypotheses: "
        "turn 1, x -> z, only)",
    )
    exp_num: int = option(3, "exploration samples per input and turn (4: 3)")
    top_p: float = option(0.5, "nucleus sampling for exploration (4: 0.5)")
    epochs: int = option(20, "epochs at most (4: 20)")
    max_steps: int = option(0, "stop after this many optimizer steps (0 = by epochs)")
    max_train: int = option(0, "use only the first N training examples (0 = all)")
    max_dev: int = option(0, "evaluate on the first N dev examples only (0 = all)")
    batch_size: int = option(4, "examples per step (4: 4; README 8)")
    grad_accum: int = option(4, "gradient accumulation (4: 4)")
    lr: float = option(1e-4, "AdamW learning rate (4: 1e-4), linear decay, no warmup")
    max_length: int = option(256, "input tokens (4: 256)")
    max_new_tokens: int = option(64, "tokens per generated z")
    eval_batch_size: int = option(32, "dev generation batch size")
    patience: int = option(3, "stop after this many epochs without a better dev score (0 = never)")
    metric: str = option("auto", "dev metric to maximise; auto: the task's first metric after 'n'")


def turn_inputs(task, examples: list[dict], samples: list[str]) -> list[str]:
    """The next turn's inputs: x, the chosen sample and the oracle's feedback on it."""
    return [refine_input(e["x"], z, task.critique(e, z)) for e, z in zip(examples, samples)]


def labels_for(tok, examples: list[dict], max_length: int, device) -> torch.Tensor:
    rows = [target_ids(tok, e["z"], max_length) for e in examples]
    labels = torch.full((len(rows), max(map(len, rows))), IGNORE, dtype=torch.long)
    for i, r in enumerate(rows):
        labels[i, : len(r)] = torch.tensor(r)
    return labels.to(device)


def sampled_hypotheses(model, tok, inputs: list[str], cfg: TrainRefinerConfig, rng: random.Random) -> list[str]:
    """The paper's exploration (refiner.md 4): `exp_num` top-p samples per input, one chosen at random."""
    samples = generate(
        model,
        tok,
        inputs,
        max_length=cfg.max_length,
        max_new_tokens=cfg.max_new_tokens,
        batch_size=len(inputs),
        sample=True,
        top_p=cfg.top_p,
        num_return=cfg.exp_num,
    )
    return [samples[i * cfg.exp_num + rng.randrange(cfg.exp_num)] for i in range(len(inputs))]


def greedy_hypotheses(model, tok, inputs: list[str], cfg: TrainRefinerConfig, rng: random.Random) -> list[str]:
    """Without exploration: the generator's one greedy output (`rng` unused)."""
    return generate(
        model, tok, inputs, max_length=cfg.max_length, max_new_tokens=cfg.max_new_tokens, batch_size=len(inputs)
    )


# --exploration: how the hypothesis of the next turn is drawn; `none` draws none (turn 1 only)
EXPLORATION = {"sampled": sampled_hypotheses, "greedy": greedy_hypotheses, "none": None}


def refiner_loss(
    model, tok, task, examples: list[dict], cfg: TrainRefinerConfig, rng: random.Random, trace: list | None = None
) -> tuple[torch.Tensor, list[float]]:
    """Summed loss over turns for one batch, and each turn's loss. `trace` collects the inputs."""
    hypotheses = lookup(EXPLORATION, cfg.exploration, "--exploration")
    turns = 1 if hypotheses is None else cfg.turns
    inputs = [e["x"] for e in examples]
    labels = labels_for(tok, examples, cfg.max_length, model.device)
    total, per_turn = None, []
    for t in range(turns):
        if trace is not None:
            trace.append(list(inputs))
        loss = model(**encode(tok, inputs, cfg.max_length, model.device), labels=labels).loss
        total = loss if total is None else total + loss
        per_turn.append(loss.item())
        if t == turns - 1:
            break  # the last turn's samples would be unused
        inputs = turn_inputs(task, examples, hypotheses(model, tok, inputs, cfg, rng))
    return total, per_turn


def evaluate(model, tok, task, dev: list[dict], cfg: TrainRefinerConfig) -> dict:
    preds = generate(
        model,
        tok,
        [e["x"] for e in dev],
        max_length=cfg.max_length,
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.eval_batch_size,
    )
    return task.metrics(dev, preds)


def pick_metric(cfg: TrainRefinerConfig, scores: dict) -> str:
    if cfg.metric != "auto":
        if cfg.metric not in scores:
            raise SystemExit(f"--metric {cfg.metric}: the task reports {', '.join(scores)}")
        return cfg.metric
    return next(k for k in scores if k != "n")


def save_model(model, tok, target: Path, lora: bool) -> None:
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if lora:
        import copy

        copy.deepcopy(model).merge_and_unload().save_pretrained(tmp)  # a plain model: no peft needed later
    else:
        model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def load_data(cfg: TrainRefinerConfig, task) -> tuple[list[dict], list[dict]]:
    examples = [e for f in cfg.input.split(",") for e in task.load_examples(f.strip())]
    if cfg.dev:
        train, dev = examples, task.load_examples(cfg.dev)
    else:
        train, dev = refiner_tasks.split_examples(examples, 1.0, cfg.dev_fraction, cfg.seed)
    return (train[: cfg.max_train] if cfg.max_train else train), (dev[: cfg.max_dev] if cfg.max_dev else dev)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_config(TrainRefinerConfig, argv, __doc__)
    if not cfg.input or not cfg.output or not cfg.model:
        raise SystemExit("--input, --model (the warm-start checkpoint) and --output are required")
    if cfg.turns < 1 or cfg.exp_num < 1:
        raise SystemExit("--turns and --exp-num must be at least 1")
    if cfg.exploration not in EXPLORATION:
        raise SystemExit(f"--exploration {cfg.exploration!r}: one of {', '.join(EXPLORATION)}")
    setup_logging()
    started = time.time()
    task = refiner_tasks.get_task(cfg.task)
    train, dev = load_data(cfg, task)
    if not dev:
        raise SystemExit("no dev examples: give --dev or a --dev-fraction above 0")
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model, tok = load_seq2seq(cfg.model, pick_device(cfg.device))  # refiner.md 9: the reference ignored it
    log.info("train_refiner: warm start from %s (%s)", cfg.model, type(model).__name__)
    model = trainable(model, cfg, seq2seq=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, eps=1e-8, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(train) / (cfg.batch_size * cfg.grad_accum))
    total_steps = min(cfg.max_steps, cfg.epochs * steps_per_epoch) if cfg.max_steps else cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / max(1, total_steps)))
    state = {
        "epoch": 0,
        "step": 0,
        "best": None,
        "best_epoch": None,
        "bad_epochs": 0,
        "history": [],
        "metric": None,
        "resumed_from_epoch": None,
    }
    last = out / "last"
    if (last / "state.json").exists():
        state.update(json.loads((last / "state.json").read_text()))
        saved = torch.load(last / "training.pt", weights_only=True)  # no code from a file in the output dir
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        restore_rng_state(saved)
        state["resumed_from_epoch"] = state["epoch"]
        log.info("train_refiner: resuming after epoch %d (step %d)", state["epoch"], state["step"])

    while (
        state["epoch"] < cfg.epochs
        and state["step"] < total_steps
        and not (cfg.patience and state["bad_epochs"] >= cfg.patience)
    ):
        epoch = state["epoch"]
        order = list(range(len(train)))
        random.Random(cfg.seed * 1000 + epoch).shuffle(order)
        rng = random.Random(f"{cfg.seed}-{epoch}")  # which sample is explored, per epoch: resumable
        model.train()
        turn_sums, batches, epoch_start = [0.0] * (1 if cfg.exploration == "none" else cfg.turns), 0, time.time()
        optimizer.zero_grad()
        for b, i in enumerate(range(0, len(order), cfg.batch_size)):
            batch = [train[j] for j in order[i : i + cfg.batch_size]]
            loss, per_turn = refiner_loss(model, tok, task, batch, cfg, rng)
            (loss / cfg.grad_accum).backward()
            turn_sums = [s + v for s, v in zip(turn_sums, per_turn)]
            batches += 1
            if (b + 1) % cfg.grad_accum == 0 or i + cfg.batch_size >= len(order):
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                state["step"] += 1
                if state["step"] % 10 == 0:
                    log.info(
                        "epoch %d step %d/%d: loss per turn %s",
                        epoch + 1,
                        state["step"],
                        total_steps,
                        [round(s / batches, 4) for s in turn_sums],
                    )
                if state["step"] >= total_steps:
                    break
        scores = evaluate(model, tok, task, dev, cfg)
        state["metric"] = metric = pick_metric(cfg, scores)
        entry = {
            "epoch": epoch + 1,
            "step": state["step"],
            "train_loss_per_turn": [s / max(1, batches) for s in turn_sums],
            "dev": scores,
            "seconds": round(time.time() - epoch_start, 1),
        }
        state["history"].append(entry)
        log.info("epoch %d: dev %s", epoch + 1, scores)
        if state["best"] is None or scores[metric] > state["best"]:
            state.update(best=scores[metric], best_epoch=epoch + 1, bad_epochs=0)
            save_model(model, tok, out / "best", cfg.lora)
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        _save_state(last, model, optimizer, scheduler, state)

    info = stage_manifest(
        "train_refiner",
        cfg,
        {"train": len(train), "dev": len(dev), "epochs": state["epoch"], "steps": state["step"]},
        started,
        best={"metric": state["metric"], "value": state["best"], "epoch": state["best_epoch"]},
        history=state["history"],
        resumed_from_epoch=state["resumed_from_epoch"],
        warm_start=cfg.model,
    )
    write_manifest(out, 0, 1, info)
    write_json_atomic(
        out / "metrics.json", {k: info[k] for k in ("best", "history", "counts", "resumed_from_epoch", "warm_start")}
    )
    log.info(
        "train_refiner: best dev %s = %s at epoch %s; model in %s",
        state["metric"],
        state["best"],
        state["best_epoch"],
        out / "best",
    )
    return 0


def _save_state(last: Path, model, optimizer, scheduler, state: dict) -> None:
    last.mkdir(parents=True, exist_ok=True)
    tmp = last / "training.pt.tmp"
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            **rng_state(),
        },
        tmp,
    )
    tmp.replace(last / "training.pt")
    write_json_atomic(last / "state.json", state)  # written last: it marks the epoch as finished


if __name__ == "__main__":
    sys.exit(main())
