"""Shared fixtures: tiny real models built in seconds, no files needed.

Markers (see pyproject.toml): `slow` runs the embedded SmolLM2 / MiniLM; `vllm` needs the
real vLLM server from .venv-vllm. The default `make test` runs all of them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

CORPUS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "How many clips did Natalia sell altogether in April and May? The answer is 72.",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting.",
    "The cat sat on the mat. A dog ran in the park. Let's think step by step.",
    "#### 10 #### 72 The total is 3 + 4 = 7. So she has 7 apples left.",
]


def _train_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token=None))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tk.train_from_iterator(CORPUS * 5, trainer)
    # adds BOS like Llama-3's tokenizer, and the chat template writes BOS too: the double-BOS trap
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="<|im_end|>", pad_token="<pad>")
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tok


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return _train_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama(tiny_tokenizer):
    """(model, tokenizer): a 2-layer random Llama with GQA, fp32, CPU."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tiny_tokenizer.bos_token_id,
        eos_token_id=tiny_tokenizer.eos_token_id,
        pad_token_id=tiny_tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = tiny_tokenizer.eos_token_id
    return model, tiny_tokenizer


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_llama, tmp_path_factory):
    """The tiny model saved as a normal transformers folder (for stages that load by path)."""
    model, tok = tiny_llama
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def smollm2_dir():
    """The embedded SmolLM2, converted once into the cache (about 25 s the first time)."""
    from common.models import resolve

    return resolve("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def smollm2(smollm2_dir):
    from common.llm.hf import HFBackend

    return HFBackend("smollm2-135m-instruct", device="cpu", dtype="float32")


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder is not next to this checkout)")
    return path


def kill_mid_shard(proc, journal: Path, min_done: int, timeout: float = 120.0) -> None:
    """SIGKILL a stage process once its shard journal lists `min_done` finished inputs (a journal line is a
    batch of inputs)."""
    import os
    import signal
    import time

    def done(text: str) -> int:
        n = 0
        for line in text.split("\n"):
            try:
                unit = json.loads(line)
            except ValueError:
                continue  # empty, or torn while being written
            n += len(unit["entries"]) if isinstance(unit, dict) else 1
        return n

    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if journal.exists() and done(journal.read_text()) >= min_done:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the stage finished before it could be killed"


def save_tiny_t5(tokenizer, out, **config) -> str:
    """A 2+2-layer random T5 (seed 0) with the given tokenizer, saved in `out`; `config` adds T5Config keys."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=len(tokenizer),
        d_model=64,
        d_kv=16,
        d_ff=128,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        **config,
    )
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_t5_dir(tiny_tokenizer, tmp_path_factory):
    """A 2+2-layer random T5 with the in-test tokenizer, saved as a folder."""
    return save_tiny_t5(tiny_tokenizer, tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="session")
def input_sensitive_t5_dir(tiny_tokenizer, tmp_path_factory):
    """Like tiny_t5_dir but with large initial weights: the conftest T5 ends its output at once, this one's
    greedy output depends on all of its input (which input a stage gave it shows in what it writes)."""
    return save_tiny_t5(tiny_tokenizer, tmp_path_factory.mktemp("input-sensitive-t5"), initializer_factor=20.0)


# ----------------------------------------------------------------------------- shared data for several test files

# SVAMP/MAWPS CSV rows (numbers masked, prefix equations), for the REFINER stages
CSV = """Question,Numbers,Equation,Answer
julia played tag with number0 kids on monday and number1 on tuesday . how many in all ?,18 10,+ number0 number1,28.0
she has number0 apples and eats number1 . how many left ?,7 3,- number0 number1,4.0
a box holds number0 pens . how many pens in number1 boxes ?,6 4,* number0 number1,24.0
number0 cookies are shared by number1 kids . how many each ?,12 3,/ number0 number1,4.0
he had number0 cards and got number1 more and gave number2 away . how many now ?,5 4 2,- + number0 number1 number2,7.0
each of number0 bags has number1 marbles . he loses number2 . how many left ?,3 5 4,- * number0 number1 number2,11.0
"""

# a document and its rewrite with two rationales (parse and score stages)
DOC = (
    "Natalia sold clips to 48 of her friends in April. She sold half as many clips in May. "
    "How many clips did she sell altogether?"
)
REWRITE = (
    "Natalia sold clips to 48 of her friends in April. <BOT>Next we need May's sales, half of 48.<EOT> "
    "She sold half as many clips in May. <BOT>Now add April and May.<EOT> "
    "How many clips did she sell altogether?"
)


def mixed_corpus(path: Path, n_prose: int = 30, n_reasoning: int = 15) -> dict[str, str]:
    """Public-domain prose (Jules Verne, shipped in reasoning-gym) and GSM8K-style worked problems."""
    import reasoning_gym

    verne = (
        Path(importlib.util.find_spec("reasoning_gym").submodule_search_locations[0]) / "data" / "in_the_year_2889.txt"
    )
    prose = [" ".join(p.split()) for p in re.split(r"\n\s*\n", verne.read_text()) if len(p) > 200][:n_prose]
    problems = [
        x["question"] + "\n" + x["metadata"]["answer_cot"]
        for x in reasoning_gym.create_dataset("gsm_symbolic", size=n_reasoning, seed=77)
    ]
    kinds = {}
    with open(path, "w") as fh:
        for kind, texts in (("prose", prose), ("reasoning", problems)):
            for t in texts:
                fh.write(json.dumps({"text": t, "meta": {"pile_set_name": kind}}) + "\n")
                kinds[t] = kind
    fh = open(path, "a")
    fh.write(json.dumps({"text": "x" * 2100}) + "\n")  # over max_chars
    fh.close()
    return kinds


def save_headless_llama(base, tokenizer_dir: str, folder: Path) -> Path:
    """`base` saved as a bare LlamaModel (no lm_head) with one added pad token: the shape of RATIONALYST's
    released model (a full fine-tune saved without its head, vocab 128,257)."""
    import torch
    from transformers import AutoTokenizer, LlamaModel

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    tok.add_special_tokens({"pad_token": "<|finetune_pad|>"})
    cfg = base.config.to_dict()
    cfg.update(vocab_size=len(tok), pad_token_id=tok.pad_token_id, architectures=["LlamaModel"])
    body = LlamaModel(type(base.config)(**{k: v for k, v in cfg.items() if k != "model_type"}))
    with torch.no_grad():
        body.embed_tokens.weight[: base.config.vocab_size] = base.model.embed_tokens.weight
        body.load_state_dict(
            {k: v for k, v in base.model.state_dict().items() if k != "embed_tokens.weight"}, strict=False
        )
    body.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
