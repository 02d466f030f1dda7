"""common/training.py: the padding-free collator gives the padded batch's loss and gradients, rows unseen by
each other."""

import torch

from common.training import causal_example, collate, packed_collator

PAIRS = [
    ("The cat sat.", "It was tired and slept."),
    ("Natalia sold clips to 48 friends", "She sold 24."),
    ("hi", "The answer is 72 apples in all, said Weng"),
]


def test_padding_free_loss_and_gradients_equal_the_padded_ones(tiny_llama):
    model, tok = tiny_llama
    model = type(model)(model.config)
    model.load_state_dict(tiny_llama[0].state_dict())
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
