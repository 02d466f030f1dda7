"""training.attach_head: a headless checkpoint written again as a complete causal LM with the base's head."""

import json

import pytest
import torch

from tests.conftest import save_headless_llama
from training import attach_head


def test_a_headless_checkpoint_is_written_complete_and_the_approximation_follows_it(
    tiny_llama, tiny_llama_dir, tmp_path
):
    """The written directory loads as a plain causal LM (no --missing-head: what a vLLM server needs) with the
    base's head and the added pad token's mean row; its manifest, and the manifest of a stage that names it as
    a model, state the borrowed head."""
    from transformers import AutoModelForCausalLM

    from common.stage import approximations

    base, _ = tiny_llama
    headless = save_headless_llama(base, tiny_llama_dir, tmp_path / "headless")
    out = tmp_path / "complete"
    args = ["--model", str(headless), "--missing-head", f"base:{tiny_llama_dir}", "--dtype", "float32"]
    assert attach_head.main(args + ["--output", str(out)]) == 0
    model, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and model.config.vocab_size == base.config.vocab_size + 1
    head, donor = model.get_output_embeddings().weight, base.get_output_embeddings().weight
    assert torch.equal(head[:-1], donor) and torch.allclose(head[-1], donor.mean(0))
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits[..., :-1], base(ids).logits, atol=1e-5)  # the base's scores
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["vocab"] == base.config.vocab_size + 1
    [note] = manifest["approximations"]
    assert note.startswith(f"missing_head = base:{tiny_llama_dir}: a checkpoint saved without its output head")
    [inherited] = approximations({"rationale_model": str(out), "model": "smollm2-135m-instruct"})
    assert inherited == f"rationale_model = {out}, written with: {note}"


def test_a_checkpoint_with_its_head_or_no_base_is_refused(tiny_llama_dir, tmp_path):
    with pytest.raises(SystemExit, match="has its own output head"):
        attach_head.main(
            ["--model", tiny_llama_dir, "--missing-head", f"base:{tiny_llama_dir}", "--output", str(tmp_path)]
        )
    with pytest.raises(SystemExit, match="--missing-head base:<model> are required"):
        attach_head.main(["--model", tiny_llama_dir, "--output", str(tmp_path / "x")])
