"""Every recipe in configs/ is checked against its stage's options: an unknown key or a bad value fails."""

from pathlib import Path

import pytest

from common.config import ConfigError, load_recipe, make_config
from model_inference.inference import InferenceConfig
from model_inference.refiner_predict import RefinerPredictConfig
from model_inference.verify_steps import VerifyStepsConfig
from sampling.extract_rationales import ExtractConfig
from sampling.filter_rationales import FilterConfig
from sampling.parse_rationales import ParseConfig
from sampling.prefilter import PrefilterConfig
from sampling.score_rationales import ScoreConfig
from training.critic_data import CriticDataConfig
from training.finetune import FinetuneConfig
from training.moral_stories_prep import MoralStoriesPrepConfig
from training.train_refiner import TrainRefinerConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
STAGES = {
    "prefilter": PrefilterConfig,
    "extract_rationales": ExtractConfig,
    "parse_rationales": ParseConfig,
    "score_rationales": ScoreConfig,
    "filter_rationales": FilterConfig,
    "finetune": FinetuneConfig,
    "inference": InferenceConfig,
    "critic_data": CriticDataConfig,
    "moral_stories_prep": MoralStoriesPrepConfig,
    "train_refiner": TrainRefinerConfig,
    "refiner_predict": RefinerPredictConfig,
    "verify_steps": VerifyStepsConfig,
}
RECIPES = sorted(p for d in ("demo", "paper") for p in (CONFIGS / d).glob("*.yaml"))


def stage_of(recipe: Path) -> str:
    return recipe.stem.split("-")[0]  # inference-math.yaml, finetune-refiner_critic.yaml: variants of one stage


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_matches_its_stage(recipe):
    cls = STAGES[stage_of(recipe)]
    cfg = make_config(cls, load_recipe(recipe, cls))
    assert isinstance(cfg, cls)


def test_every_stage_has_both_recipes():
    for d in ("demo", "paper"):
        assert {stage_of(p) for p in (CONFIGS / d).glob("*.yaml")} == set(STAGES), d


def test_an_unknown_key_fails(tmp_path):
    bad = tmp_path / "prefilter.yaml"
    bad.write_text((CONFIGS / "paper" / "prefilter.yaml").read_text() + "treshold: 0.4\n")
    with pytest.raises(ConfigError, match="treshold"):
        load_recipe(bad, PrefilterConfig)
    with pytest.raises(ConfigError, match="cannot read"):
        make_config(PrefilterConfig, {"threshold": "high"})


# ----------------------------------------------------------------------------- the paper recipes carry the specs' values

LLAMA3 = "meta-llama/Meta-Llama-3-8B-Instruct"
INFERENCE = {  # rationalyst.md 6.1 (agent = scorer = LLaMA-3-8B-Instruct) and 6.3 (the decoding loop)
    "backend": ("openai", "6.1: vLLM servers"),
    "model": (LLAMA3, "6.1: agent, and the hard-coded scorer"),
    "scorer_model": ("", "6.1: the scorer is the agent-type 8B model (empty = the agent)"),
    "heuristic": ("rationalyst", "6.3 step 4: implicit supervision"),
    "k": (3, "6.3 step 3: 3 candidate next steps"),
    "temperature": (0.7, "6.3 step 3: temperature 0.7"),
    "max_steps": (15, "6.3: up to 15 iterations"),
    "step_max_tokens": (1000, "6.3 step 3: max_tokens 1000"),
    "rationale_max_tokens": (1000, "6.3 step 1: max_tokens 1000"),
    "seed": (14, "6.3 steps 1 and 3: seed 14"),
    "shots": (-1, "6.2: each data set's own few-shot count"),
}
PAPER = {
    "prefilter.yaml": {  # rationalyst.md 2
        "input": ("monology/pile-uncopyrighted", "2: the corpus"),
        "embedder": ("sentence-transformers/all-mpnet-base-v2", "2: embedding model"),
        "reference_sets": (["gsm8k", "ecqa", "arc", "proofwriter"], "2: reference sets"),
        "threshold": (0.3, "2: cosine >= 0.3"),
        "max_chars": (2000, "2: documents over 2000 characters skipped"),
    },
    "extract_rationales.yaml": {  # rationalyst.md 3.1
        "backend": ("openai", "3.1: vLLM chat completions"),
        "model": (LLAMA3, "3.1: the extractor"),
        "mode": ("rewrite", "3.1: the LLM rewrites the whole document"),
        "temperature": (0.0, "3.1: greedy"),
        "seed": (14, "3.1: seed 14"),
        "max_tokens": (3000, "3.1: 3000 in all_datasets / c4"),
    },
    "parse_rationales.yaml": {"min_faithfulness": (0.9, "4.1 step 1: >= 0.9")},
    "score_rationales.yaml": {  # rationalyst.md 4.2
        "model": (LLAMA3, "4.2: the extractor model scores"),
        "discount": (0.9, "4.2: S = sum_i logp_i 0.9^i"),
        "rationale_format": ("bot_eot", "4.2: the debug variant's ' <BOT>r<EOT>' user turn"),
    },
    "filter_rationales.yaml": {  # rationalyst.md 4.2
        "tau": (0.0, "4.2: keep iff S_with >= S_without"),
        "dev_fraction": (0.05, "4.2: 95/5 train/dev split"),
    },
    "finetune.yaml": {  # rationalyst.md 5, hyperparameters of sbatch_llama_finetune.sh
        "model": (LLAMA3, "5: base model"),
        "mode": ("causal", "5: chat SFT"),
        "lora": (False, "5: full fine-tune (use_lora=False)"),
        "prompt_field": ("preceding", "5: source = the preceding text"),
        "target_field": ("rationale", "5: target = the rationale"),
        "lr": (2e-5, "5: --learning_rate 2e-5"),
        "scheduler": ("cosine", "5: --lr_scheduler_type cosine"),
        "warmup_ratio": (0.03, "5: --warmup_ratio 0.03"),
        "weight_decay": (0.0, "5: --weight_decay 0."),
        "batch_size": (2, "5: --per_device_train_batch_size 2"),
        "grad_accum": (8, "5: --gradient_accumulation_steps 8 (x 2 GPUs x 2 = 32)"),
        "effective_batch": (32, "5: 2 GPUs x batch 2 x accumulation 8"),
        "max_length": (1024, "5: model_max_length 1024"),
        "epochs": (20, "5: --num_train_epochs 20"),
        "eval_steps": (0, "5: --evaluation_strategy epoch --save_strategy epoch"),
        "precision": ("bf16", "5: --bf16 True"),
    },
    "finetune-sft.yaml": {  # rationalyst.md 9: the agent on question -> solution, with section 5's recipe
        "model": (LLAMA3, "9: the agent (LLaMA-3-8B-Instruct, 6.1) is what the baseline fine-tunes"),
        "mode": ("causal", "5: chat SFT"),
        "lora": (False, "5: full fine-tune"),
        "prompt_field": ("prompt", "9: source = the question (training.task_examples)"),
        "target_field": ("target", "9: target = the solution"),
        "lr": (2e-5, "5"),
        "batch_size": (2, "5"),
        "effective_batch": (32, "5"),
        "max_length": (1024, "5"),
        "epochs": (20, "5"),
        "precision": ("bf16", "5"),
    },
    "finetune-refiner_warmstart.yaml": {  # refiner.md 3
        "model": ("google/flan-t5-base", "3: the README's --language-model"),
        "mode": ("seq2seq", "3: T5"),
        "lr": (1e-4, "3: Adam, learning rate 1e-4"),
        "scheduler": ("linear", "3: linear schedule"),
        "warmup_ratio": (0.0, "3: no warm-up"),
        "weight_decay": (0.0, "3: weight decay 0"),
        "batch_size": (8, "3: the README's --batch-size 8"),
        "grad_accum": (4, "3: --gradient-accumulation 4"),
        "max_length": (256, "3: --seq_len 256"),
        "epochs": (20, "3: up to 20 epochs with early stopping on validation loss"),
    },
    "finetune-refiner_critic.yaml": {  # refiner.md 2.6, with the fine-tuning script of 3
        "model": ("google/flan-t5-base", "2.6: the README's --language-model"),
        "mode": ("seq2seq", "2.6: T5"),
        "epochs": (10, "2.6: the README's --epochs 10"),
        "batch_size": (8, "2.6: the README's --batch-size 8"),
        "lr": (1e-4, "3: --lr 1e-4"),
        "scheduler": ("linear", "3: linear schedule"),
        "warmup_ratio": (0.0, "3: no warm-up"),
        "grad_accum": (4, "3: --gradient-accumulation 4"),
        "max_length": (256, "3: --seq_len 256"),
    },
    "train_refiner.yaml": {  # refiner.md 4 and 6
        "turns": (3, "4: the paper trains with T = 3"),
        "exploration": ("sampled", "4 step 2: exp_num top-p samples, one kept"),
        "exp_num": (3, "4: --exp_num 3"),
        "top_p": (0.5, "4 step 2.2: top_p=0.5"),
        "lr": (1e-4, "4: --lr 1e-4"),
        "batch_size": (8, "4: the README's --batch-size 8"),
        "grad_accum": (4, "4: --gradient-accumulation 4"),
        "max_length": (256, "4: --seq_len 256"),
        "epochs": (10, "4: the README's --epochs 10"),
        "patience": (20, "4: stops after 20 evaluations without improvement"),
        "lora": (False, "6: LoRA is an option, off by default"),
        "lora_r": (8, "6: r=8"),
        "lora_alpha": (32, "6: lora_alpha=32"),
        "lora_dropout": (0.1, "6: lora_dropout=0.1"),
    },
    "train_refiner-no_exploration.yaml": {  # refiner.md 8.2's "- exploration" ablation
        "exploration": ("greedy", "8.2: - exploration"),
        "turns": (3, "4: the paper trains with T = 3"),
        "lr": (1e-4, "4: --lr 1e-4"),
        "batch_size": (8, "4: the README's --batch-size 8"),
        "grad_accum": (4, "4: --gradient-accumulation 4"),
        "epochs": (10, "4: the README's --epochs 10"),
    },
    "refiner_predict.yaml": {"task": ("mwp", "5: SVAMP"), "turns": (0, "5: T by critic, see the test below")},
    "verify_steps.yaml": {  # rationalyst.md 6.1 and 6.3: the inference scorer applied to labelled steps
        "backend": ("openai", "6.1: vLLM servers"),
        "model": (LLAMA3, "6.1: the hard-coded scorer"),
        "rationale_model": ("rationalyst", "6.1: the fine-tuned rationale model, served as rationalyst"),
        "rationale_max_tokens": (1000, "6.3 step 1: max_tokens 1000"),
    },
    **{
        f"inference{suffix}.yaml": {**INFERENCE, "dataset": (name, "6.2: the recipe's data set")}
        for suffix, name in [("", "gsm8k")]
        + [(f"-{n}", n) for n in ("math", "ecqa", "hellaswag", "proofwriter", "arc", "mmlu_pro")]
    },
}


def paper_config(name: str):
    recipe = CONFIGS / "paper" / name
    cls = STAGES[stage_of(recipe)]
    return make_config(cls, load_recipe(recipe, cls))


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_recipe_carries_the_spec_values(name):
    cfg = paper_config(name)
    wrong = [
        f"{key} = {getattr(cfg, key)!r}, the spec says {want!r} ({why})"
        for key, (want, why) in PAPER[name].items()
        if getattr(cfg, key) != want or isinstance(getattr(cfg, key), bool) != isinstance(want, bool)
    ]
    assert not wrong, f"configs/paper/{name}: " + "; ".join(wrong)


def test_every_paper_recipe_is_checked_against_the_spec():
    unchecked = {p.name for p in (CONFIGS / "paper").glob("*.yaml")} - set(PAPER)
    data_paths = {
        "critic_data.yaml",
        "critic_data-snlr.yaml",
        "critic_data-moral_stories.yaml",
        "moral_stories_prep.yaml",
    }
    assert unchecked == data_paths


@pytest.mark.parametrize("name", [n for n in sorted(PAPER) if n.startswith("inference")])
def test_paper_inference_uses_each_data_set_s_split_and_shots(name):
    """rationalyst.md 6.2: GSM8K test with 9 shots, MATH test 5, ECQA = CommonsenseQA validation 8, ARC test 8,
    ProofWriter test 3, MMLU-Pro test 5 of the category; HellaSwag (no reference code) validation, 4."""
    from common.tasks.rationalyst import parse_dataset

    want = {
        "gsm8k": ("test", 9),
        "math": ("test", 5),
        "ecqa": ("validation", 8),
        "arc": ("test", 8),
        "proofwriter": ("test", 3),
        "mmlu_pro": ("test", 5),
        "hellaswag": ("validation", 4),
    }
    cfg = paper_config(name)
    _, task, _ = parse_dataset(cfg.dataset)
    assert cfg.split == "" and (task.DEFAULT_SPLIT, task.DEFAULT_SHOTS) == want[cfg.dataset]


def test_paper_refiner_predict_refines_once_with_the_critic_and_three_times_with_the_oracle():
    """refiner.md 5: T = 1 refinement round with the trained critic, T = 3 with the oracle critic."""
    import dataclasses

    from model_inference.refiner_predict import ORACLE, rounds

    cfg = paper_config("refiner_predict.yaml")
    assert rounds(dataclasses.replace(cfg, critic=ORACLE)) == 3
    assert rounds(dataclasses.replace(cfg, critic="runs/refiner/critic/final")) == 1
