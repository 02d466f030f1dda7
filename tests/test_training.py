"""common/training.py: the padding-free collator gives the padded batch's loss and gradients, rows unseen by
each other."""

import copy

import pytest
import torch

from common import models, training
from common.training import causal_example, collate, packed_collator

PAIRS = [
    ("The cat sat.", "It was tired and slept."),
    ("Natalia sold clips to 48 friends", "She sold 24."),
    ("hi", "The answer is 72 apples in all, said Weng"),
]


def test_padding_free_loss_and_gradients_equal_the_padded_ones(tiny_llama):
    model, tok = tiny_llama
    model = type(model)(copy.deepcopy(model.config))  # its own config: a backend may have changed the fixture's
    model.load_state_dict(tiny_llama[0].state_dict())
    model.set_attn_implementation("sdpa")  # transformers' own block mask for the packed row
    examples = [causal_example(tok, p, t, "", 512) for p, t in PAIRS]
    padded, packed = collate(tok.pad_token_id)(examples), packed_collator()(examples)
    assert packed["input_ids"].shape[0] == 1 and packed["input_ids"].shape[1] == sum(
        len(e["input_ids"]) for e in examples
    )
    assert packed["input_ids"].numel() < padded["input_ids"].numel()  # no pads
    losses, grads = [], []
    for batch in (padded, packed):
        model.zero_grad()
        loss = model(**batch, use_cache=False).loss
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert abs(losses[0] - losses[1]) < 1e-5 and torch.allclose(grads[0], grads[1], atol=1e-5)
    # the rows are independent: a row's loss does not change with what is packed before it
    alone = model(**packed_collator()(examples[1:2]), use_cache=False).loss.item()
    after = packed_collator()(examples[:2])
    n0 = len(examples[0]["input_ids"])
    logits = model(input_ids=after["input_ids"], position_ids=after["position_ids"], use_cache=False).logits
    ref = model(input_ids=torch.tensor([examples[1]["input_ids"]]), use_cache=False).logits
    assert torch.allclose(logits[0, n0:], ref[0], atol=1e-5) and alone > 0


def test_varlen_attention_gives_the_padded_loss_and_gradients_and_keeps_rows_apart(tiny_llama):
    """The attention finetune sets for padding-free batches (one causal SDPA per packed row) against padded
    batches under plain sdpa: same loss and gradients; a row's logits do not depend on the rows before it."""
    model = type(tiny_llama[0])(copy.deepcopy(tiny_llama[0].config))
    model.load_state_dict(tiny_llama[0].state_dict())
    tok = tiny_llama[1]
    examples = [causal_example(tok, p, t, "", 512) for p, t in PAIRS]
    padded, packed = collate(tok.pad_token_id)(examples), packed_collator()(examples)
    model.set_attn_implementation("sdpa")
    model.zero_grad()
    reference = model(**padded, use_cache=False).loss
    reference.backward()
    reference_grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert training.use_packed_attention(model) == models.PACKED_ATTENTION
    assert model.config._attn_implementation == models.PACKED_ATTENTION
    model.zero_grad()
    loss = model(**packed, use_cache=False).loss
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert abs(loss.item() - reference.item()) < 1e-5 and torch.allclose(grads, reference_grads, atol=1e-5)
    after = packed_collator()(examples[:2])
    n0 = len(examples[0]["input_ids"])
    logits = model(input_ids=after["input_ids"], position_ids=after["position_ids"], use_cache=False).logits
    ref = model(input_ids=torch.tensor([examples[1]["input_ids"]]), use_cache=False).logits
    assert torch.allclose(logits[0, n0:], ref[0], atol=1e-5)
    # a padded batch (not packed) under the same attention still reads its padding mask
    model.zero_grad()
    assert abs(model(**padded, use_cache=False).loss.item() - reference.item()) < 1e-5
    # no (length x length) block mask is built for a packed row: each sequence is attended on its own
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    length = packed["input_ids"].shape[1]
    assert (
        ALL_MASK_ATTENTION_FUNCTIONS[models.PACKED_ATTENTION](batch_size=1, q_length=length, kv_length=length) is None
    )


def test_varlen_attention_splits_where_position_ids_do_not_step_by_one(tiny_llama):
    """A packed row whose second sequence does not start at position 0 (a continuation) is still split there,
    as transformers' own detection does; a model whose attention is not plain causal is not switched."""
    model = type(tiny_llama[0])(copy.deepcopy(tiny_llama[0].config))
    model.load_state_dict(tiny_llama[0].state_dict())
    assert models.use_varlen_sdpa(model)
    ids = torch.arange(3, 12)[None]
    positions = torch.tensor([[0, 1, 2, 3, 7, 8, 9, 10, 11]])
    logits = model(input_ids=ids, position_ids=positions, use_cache=False).logits
    second = model(input_ids=ids[:, 4:], position_ids=positions[:, 4:], use_cache=False).logits
    assert torch.allclose(logits[0, 4:], second[0], atol=1e-5)
    config = copy.deepcopy(tiny_llama[0].config)
    config.sliding_window = 4
    assert not models.use_varlen_sdpa(type(tiny_llama[0])(config))


def test_accumulation_keeps_the_effective_batch_on_any_gpu_count():
    assert [training.grad_accum_for(32, 2, gpus) for gpus in (1, 2, 4, 8)] == [16, 8, 4, 2]
    assert training.grad_accum_for(32, 4, 2) == 4
    with pytest.raises(SystemExit, match="not a multiple of --batch-size 2 x 3"):
        training.grad_accum_for(32, 2, 3)


def test_fsdp_launch_reads_what_accelerate_launch_sets():
    assert training.fsdp_launch({}) is None and training.fsdp_launch({"ACCELERATE_USE_FSDP": "false"}) is None
    env = {
        "ACCELERATE_USE_FSDP": "true",
        "FSDP_ACTIVATION_CHECKPOINTING": "true",
        "FSDP_STATE_DICT_TYPE": "SHARDED_STATE_DICT",
        "FSDP_CPU_RAM_EFFICIENT_LOADING": "true",
    }
    assert training.fsdp_launch(env) == training.FsdpLaunch(True, "SHARDED_STATE_DICT", True)
    assert training.fsdp_launch({"ACCELERATE_USE_FSDP": "true"}).activation_checkpointing is False


def test_rng_state_round_trip_restores_the_draws():
    saved = training.rng_state()
    assert set(saved) == {"torch_rng", "cuda_rng"}
    assert (saved["cuda_rng"] is None) == (not torch.cuda.is_available())
    first = torch.rand(3)
    training.restore_rng_state(saved)
    assert torch.equal(torch.rand(3), first)
