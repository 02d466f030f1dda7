"""Seq2seq helpers shared by REFINER training and prediction: load, encode, generate, decode.

Works for T5 / flan-t5 (Hub ids) and the MiniLM encoder-decoders of common.models; inputs are
tokenised without token_type_ids (BERT tokenizers return them, EncoderDecoderModel rejects them).
"""

from __future__ import annotations

import torch

from common.models import load_tokenizer, pick_device, resolve
from common.tasks.refiner.format import canonical


def load_seq2seq(name: str, device: str = "auto"):
    """(model, tokenizer) for a registry name, Hub id or folder; fp32, on the chosen device."""
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(resolve(name), dtype=torch.float32)
    return model.to(pick_device(device)), load_tokenizer(name)


def encode(tok, texts: list[str], max_length: int, device) -> dict:
    enc = tok(
        texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt", return_token_type_ids=False
    )
    return {k: v.to(device) for k, v in enc.items()}


def decode(tok, ids) -> list[str]:
    """Generated ids as text in the layout the task parsers read: special tokens dropped, then
    format.canonical (a WordPiece decode's `# 0 :` and `moral action :` written back)."""
    return [canonical(t) for t in tok.batch_decode(ids, skip_special_tokens=True)]


@torch.no_grad()
def generate(
    model,
    tok,
    texts: list[str],
    *,
    max_length: int = 256,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    sample: bool = False,
    top_p: float = 1.0,
    num_return: int = 1,
) -> list[str]:
    """Greedy (or nucleus-sampled) outputs, `num_return` per text in order, in eval mode: the
    reference sampled with dropout on (refiner.md 9.1.10)."""
    was_training = model.training
    model.eval()
    out: list[str] = []
    try:
        for i in range(0, len(texts), batch_size):
            enc = encode(tok, texts[i : i + batch_size], max_length, model.device)
            kw = dict(do_sample=True, top_p=top_p, top_k=0) if sample else dict(do_sample=False)
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, num_return_sequences=num_return, **kw)
            out.extend(decode(tok, ids))
    finally:
        model.train(was_training)
    return out
