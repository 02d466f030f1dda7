from dataclasses import dataclass

import pytest

from common.config import ConfigError, StageConfig, build_parser, load_recipe, make_config, option, parse_config


@dataclass
class Demo(StageConfig):
    threshold: float = option(0.3, "cosine threshold")
    sources: list[str] = option(["gsm8k", "ecqa"], "reference sets")
    limit: int | None = option(None, "max records")
    verbose: bool = option(False, "chatty")


def test_defaults_recipe_then_cli_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("threshold: 0.5\nsources: [arc]\nlimit: 7\n")
    cfg = parse_config(Demo, ["--config", str(recipe), "--limit", "9", "--verbose", "true"])
    assert (cfg.threshold, cfg.sources, cfg.limit, cfg.verbose) == (0.5, ["arc"], 9, True)
    assert parse_config(Demo, []).sources == ["gsm8k", "ecqa"]
    assert parse_config(Demo, ["--sources", "a,b", "--limit", "none"]).sources == ["a", "b"]


def test_unknown_keys_are_errors(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("threshhold: 0.5\n")
    with pytest.raises(ConfigError, match="threshhold"):
        load_recipe(recipe, Demo)
    with pytest.raises(SystemExit):
        parse_config(Demo, ["--config", str(recipe)])
    assert "unknown option(s) threshhold" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(Demo, ["--treshold", "1"])
    with pytest.raises(ConfigError, match="cannot read"):
        make_config(Demo, {"threshold": "high"})


def test_help_lists_every_option_with_default():
    text = " ".join(build_parser(Demo).format_help().split())
    for flag, default in [
        ("--threshold", "0.3"),
        ("--sources", "gsm8k,ecqa"),
        ("--on-bad-record", "error"),
        ("--shard-index", "None"),
        ("--seed", "0"),
        ("--verbose", "False"),
    ]:
        section = text.split(flag + " ", 2)[2]  # usage line first, then the option's own entry
        assert section.split("--", 1)[0].rstrip().endswith(f"(default: {default})"), section[:120]


def test_shards_default_from_slurm_array(monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "8")
    cfg = parse_config(Demo, [])
    assert (cfg.shard_index, cfg.num_shards) == (4, 8)
    assert parse_config(Demo, ["--shard-index", "0", "--num-shards", "1"]).num_shards == 1
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID")
    monkeypatch.delenv("SLURM_ARRAY_TASK_COUNT")
    assert (parse_config(Demo, []).shard_index, parse_config(Demo, []).num_shards) == (0, 1)
    with pytest.raises(ConfigError, match="not in"):
        Demo(shard_index=3, num_shards=2)
