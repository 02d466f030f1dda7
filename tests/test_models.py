import dataclasses

import pytest
import torch

from common import models
from tests.conftest import save_headless_llama


def test_other_names_pass_through():
    assert models.resolve("meta-llama/Meta-Llama-3-8B-Instruct") == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert models.resolve("/some/local/dir") == "/some/local/dir"


def test_device_and_dtype_on_cpu():
    assert models.pick_device("cpu") == "cpu"
    assert models.pick_dtype("cpu") == torch.float32
    assert models.pick_dtype("cpu", "bfloat16") == torch.bfloat16
    if not torch.cuda.is_available():
        assert models.pick_device() == "cpu"


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROCSUP_CACHE", str(tmp_path))
    assert models.cache_dir() == tmp_path
    monkeypatch.delenv("PROCSUP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "procsup"


def test_packaged_weights_match_pinned_checksums():
    for name, entry in models.PACKAGED.items():
        path = models.package_dir(entry.package) / entry.relpath
        weights = path / "model.safetensors" if path.is_dir() else path
        assert models.sha256_file(weights) == entry.sha256, name


def test_changed_package_is_refused_before_conversion(monkeypatch, tmp_path):
    monkeypatch.setenv("PROCSUP_CACHE", str(tmp_path))
    bad = dataclasses.replace(models.PACKAGED["smollm2-135m-instruct"], sha256="0" * 64)
    monkeypatch.setitem(models.PACKAGED, "smollm2-135m-instruct", bad)
    with pytest.raises(models.ModelNotFound, match="does not match"):
        models.resolve("smollm2-135m-instruct")
    assert not list((tmp_path / "models").glob("smollm2*"))


def test_missing_package_says_how_to_install():
    with pytest.raises(models.ModelNotFound, match="make setup"):
        models.package_dir("no_such_package_xyz")


@pytest.mark.slow
def test_smollm2_converted_folder_loads(smollm2_dir):
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(smollm2_dir)
    assert cfg.model_type == "llama" and cfg.num_hidden_layers == 30 and cfg.vocab_size == 49152
    assert "quantization_config" not in cfg.to_dict()
    assert models.resolve("smollm2-135m-instruct") == smollm2_dir  # cached: no second conversion


@pytest.mark.slow
def test_minilm_embeds_sensibly():
    emb = models.load_embedder("all-minilm-l6-v2", device="cpu")
    v = emb.encode(
        ["She sold 48 clips in April.", "In April she sold 48 clips.", "The weather in Paris."],
        normalize_embeddings=True,
    )
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > 0.8 > float(v[0] @ v[2]) + 0.3


@pytest.mark.slow
def test_minilm_bert2bert_is_a_seq2seq_with_bert_special_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCSUP_CACHE", str(tmp_path))
    from common.tasks.refiner.seq2seq import generate, load_seq2seq

    path = models.resolve("minilm-bert2bert")
    model, tok = load_seq2seq(path, "cpu")
    assert type(model).__name__ == "EncoderDecoderModel"
    assert (model.generation_config.decoder_start_token_id, model.generation_config.eos_token_id) == (
        tok.cls_token_id,
        tok.sep_token_id,
    )
    # the encoder and the decoder's self-attention start from MiniLM itself
    from transformers import AutoModel

    base = AutoModel.from_pretrained(models.resolve("all-minilm-l6-v2")).state_dict()
    enc = model.encoder.state_dict()
    assert torch.equal(
        enc["encoder.layer.0.attention.self.query.weight"], base["encoder.layer.0.attention.self.query.weight"]
    )
    assert torch.equal(
        model.decoder.bert.encoder.layer[0].attention.self.query.weight,
        base["encoder.layer.0.attention.self.query.weight"],
    )
    assert len(generate(model, tok, ["a b c"], max_new_tokens=4)) == 1
    assert models.resolve("minilm-bert2bert") == path  # built once


def test_a_checkpoint_without_its_head_is_refused_or_takes_the_base_head(tiny_llama, tiny_llama_dir, tmp_path):
    """A full fine-tune saved as a bare LlamaModel with one added pad token (the shape of RATIONALYST's
    released model): refused by default, naming the head; with base:<model>, the base's head, and the added
    token breaks neither the chat template nor scoring."""
    import torch
    from transformers import AutoTokenizer

    from common.llm.base import Branches
    from common.llm.hf import HFBackend

    base, _ = tiny_llama
    folder = save_headless_llama(base, tiny_llama_dir, tmp_path / "headless")
    with pytest.raises(models.ModelNotFound, match=r"no output head \(lm_head.weight missing; saved as LlamaModel\)"):
        models.load_causal_lm(str(folder), "cpu")
    model, tok2 = models.load_causal_lm(str(folder), "cpu", missing_head=f"base:{tiny_llama_dir}")
    head, donor = model.get_output_embeddings().weight, base.get_output_embeddings().weight
    assert torch.equal(head[: donor.shape[0]], donor) and head.shape[0] == donor.shape[0] + 1
    backend = HFBackend(model_obj=model, tokenizer=tok2)
    reference = HFBackend(model_obj=base, tokenizer=AutoTokenizer.from_pretrained(tiny_llama_dir))
    chat = [{"role": "user", "content": "The cat sat"}]
    assert backend.render_chat(chat) == reference.render_chat(chat)  # the added pad token changes no template
    reqs = [Branches(chat, [("", "on the mat."), ("", "and ran!")])]
    got, want = backend.score_branches(reqs), reference.score_branches(reqs)
    assert [g.token_ids for g in got] == [w.token_ids for w in want]
    # the same weights but one extra softmax row: the log-probs differ only by that row's mass
    assert all(abs(a - b) < 0.05 for g, w in zip(got, want) for a, b in zip(g.logprobs, w.logprobs))
    assert backend.generate([chat], max_tokens=4)[0].texts


def test_bf16_needs_compute_capability_8():
    assert not models.native_bf16((7, 0)) and not models.native_bf16((7, 5))  # V100, T4: emulated
    assert models.native_bf16((8, 0)) and models.native_bf16((9, 0))  # A100, H100


def test_hf_batch_tokens_scale_with_gpu_memory():
    gib = 2**30
    assert models.hf_batch_tokens(None) == models.hf_batch_tokens(8 * gib) == models.hf_batch_tokens(16 * gib) == 8192
    assert models.hf_batch_tokens(40 * gib) == 2 * 8192 and models.hf_batch_tokens(80 * gib) == 5 * 8192
