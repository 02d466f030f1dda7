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
