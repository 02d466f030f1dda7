"""Fine-tuning pieces shared by training.finetune and training.train_refiner: the LoRA option group,
example encoding with the prompt masked, the collator, trainable-parameter setup, precision."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from common.config import option
from common.models import auto_bos_id, native_bf16, pick_device, use_varlen_sdpa, with_single_bos

IGNORE = -100


@dataclass
class LoraOptions:
    """LoRA adapters on every linear layer, merged into the saved model (rationalyst.md 5 trains all
    weights; refiner.md 6's LoRA is r 8, alpha 32, dropout 0.1: configs/paper/train_refiner.yaml)."""

    lora: bool = option(False, "train LoRA adapters instead of all weights (merged on save)")
    lora_r: int = option(16, "LoRA rank")
    lora_alpha: int = option(32, "LoRA alpha")
    lora_dropout: float = option(0.05, "LoRA dropout")
    freeze_encoder: bool = option(
        False,
        "seq2seq: keep the encoder's weights fixed, adapters included (the MiniLM "
        "encoder-decoders: training it with a new cross-attention collapses its "
        "outputs)",
    )


def causal_example(tok, prompt: str, target: str, system: str, max_length: int) -> dict:
    """input_ids and labels with the prompt masked. The conversation is rendered once; the prompt
    rendering (with the generation prompt) only locates the boundary, and must be a prefix of it."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    head = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(messages + [{"role": "assistant", "content": target}], tokenize=False)
    if not full.startswith(head):
        raise ValueError("the chat template does not render the prompt as a prefix of the conversation")
    # exactly one BOS, as at inference (common.llm.hf tokenises prompts the same way)
    head_ids = with_single_bos(tok(head, add_special_tokens=False).input_ids, auto_bos_id(tok))
    tail_ids = tok(full[len(head) :], add_special_tokens=False).input_ids
    ids = (head_ids + tail_ids)[:max_length]
    labels = ([IGNORE] * len(head_ids) + tail_ids)[:max_length]
    return {"input_ids": ids, "labels": labels}


def seq2seq_example(tok, prompt: str, target: str, max_length: int) -> dict:
    enc = tok(prompt, truncation=True, max_length=max_length, return_token_type_ids=False)
    return {"input_ids": enc.input_ids, "labels": target_ids(tok, target, max_length)}


def target_ids(tok, target: str, max_length: int) -> list[int]:
    """Decoder labels: the target and its end token, no start token. A BERT tokenizer starts them
    with [CLS], which is also the decoder start token of the MiniLM seq2seq models (common.models):
    the model prepends it itself, so a label [CLS] would teach it to write [CLS] twice. A tokenizer
    that adds BOS but no EOS would never teach the model to stop."""
    ids = tok(text_target=target, truncation=True, max_length=max_length).input_ids
    if ids and ids[0] in (tok.cls_token_id, tok.bos_token_id) and ids[0] is not None:
        ids = ids[1:]
    if tok.eos_token_id is not None and ids[-1:] != [tok.eos_token_id]:
        ids = ids[: max_length - 1] + [tok.eos_token_id]
    return ids


def collate(pad_id: int):
    def fn(batch: list[dict]) -> dict:
        width = max(len(b["input_ids"]) for b in batch)
        lwidth = max(len(b["labels"]) for b in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), lwidth), IGNORE, dtype=torch.long)
        for i, b in enumerate(batch):
            ids[i, : len(b["input_ids"])] = torch.tensor(b["input_ids"])
            mask[i, : len(b["input_ids"])] = 1
            labels[i, : len(b["labels"])] = torch.tensor(b["labels"])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    return fn


def packed_collator():
    """Padding-free batches: the rows concatenated into one sequence with position ids that restart per row,
    from which transformers builds a block-diagonal causal mask (SDPA) or varlen attention (flash), so rows do
    not see each other; each row's first label is masked. The loss equals the padded batch's."""
    from transformers import DataCollatorWithFlattening

    return DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE)


def use_packed_attention(model, bf16: bool = False) -> str:
    """Set the attention that padding-free batches need: flash-attn's varlen kernel where it is installed and
    training runs in bf16 (an Ampere or later GPU), else common.models.varlen_sdpa (one causal SDPA per packed
    row). Not saved with the model."""
    import importlib.util

    if bf16 and torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        model.set_attn_implementation("flash_attention_2")
        return "flash_attention_2"
    use_varlen_sdpa(model)  # a model on eager attention keeps it: transformers masks its packed rows
    return model.config._attn_implementation


def trainable(model, cfg, seq2seq: bool):
    """LoRA adapters on every linear layer (LoraOptions), then the encoder fixed, adapters included."""
    if cfg.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        task = TaskType.SEQ_2_SEQ_LM if seq2seq else TaskType.CAUSAL_LM
        model = get_peft_model(
            model,
            LoraConfig(
                task_type=task,
                r=cfg.lora_r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules="all-linear",
            ),
        )
    if cfg.freeze_encoder:
        model.get_encoder().requires_grad_(False)
    return model


def use_bf16(precision: str) -> bool:
    if precision == "auto":
        return pick_device() == "cuda" and native_bf16(torch.cuda.get_device_capability())
    return precision == "bf16"


def grad_accum_for(effective_batch: int, batch_size: int, processes: int) -> int:
    """Accumulation steps so that batch x accumulation x processes is the effective batch (rationalyst.md 5:
    32 = 2 x 8 x 2 GPUs) on any GPU count: 16 on 1 GPU, 8 on 2, 4 on 4, 2 on 8. Refused when it does not divide."""
    per_step = batch_size * processes
    if effective_batch <= 0 or per_step <= 0 or effective_batch % per_step:
        raise SystemExit(
            f"--effective-batch {effective_batch} is not a multiple of --batch-size {batch_size} x {processes} "
            "process(es); change one of them (or the GPU count)"
        )
    return effective_batch // per_step


@dataclass(frozen=True)
class FsdpLaunch:
    """What `accelerate launch` with an FSDP config told this process (its FSDP_* environment variables)."""

    activation_checkpointing: bool
    state_dict_type: str
    cpu_ram_efficient_loading: bool


def fsdp_launch(env: Mapping[str, str] | None = None) -> FsdpLaunch | None:
    """The FSDP settings of this launch, or None when it is not an FSDP launch."""
    env = os.environ if env is None else env
    if env.get("ACCELERATE_USE_FSDP", "false").lower() != "true":
        return None
    return FsdpLaunch(
        activation_checkpointing=env.get("FSDP_ACTIVATION_CHECKPOINTING", "false").lower() == "true",
        state_dict_type=env.get("FSDP_STATE_DICT_TYPE", "FULL_STATE_DICT").upper().replace("STATEDICTTYPE.", ""),
        cpu_ram_efficient_loading=env.get("FSDP_CPU_RAM_EFFICIENT_LOADING", "false").lower() == "true",
    )


def rng_state() -> dict:
    """torch's random state for a resumable checkpoint: the CPU generator's and, on a GPU, every CUDA
    device's (dropout and sampling on a GPU draw from the CUDA generators, not the CPU one)."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng_state(saved: dict) -> None:
    torch.set_rng_state(saved["torch_rng"])
    cuda = saved.get("cuda_rng")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
