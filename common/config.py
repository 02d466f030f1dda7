"""Stage options: a dataclass, a YAML recipe, and `--key value` overrides.

    cfg = parse_config(MyStageConfig)            # reads sys.argv
    cfg = parse_config(MyStageConfig, ["--config", "configs/demo/x.yaml", "--threshold", "0.4"])

Precedence: dataclass default < YAML recipe < command line. Unknown keys, in the
recipe or on the command line, are an error. `--help` lists every option with its
default and help text (from `field(metadata={"help": ...})`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    pass


def option(default: Any = dataclasses.MISSING, help: str = "", **kw) -> Any:
    """A dataclass field with help text; mutable defaults (lists) are copied."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kw)
    return dataclasses.field(default=default, metadata={"help": help}, **kw)


@dataclasses.dataclass
class StageConfig:
    """Options every stage has: where to read, where to write, which shard."""

    input: str = option("", "input directory of JSONL shards, or a .jsonl file; several comma-separated")
    output: str = option("", "output directory; shards, manifest.json and failures go here")
    shard_index: int | None = option(
        None, "this process's shard; default $SLURM_ARRAY_TASK_ID - $SLURM_ARRAY_TASK_MIN, else 0"
    )
    num_shards: int | None = option(None, "number of shards; default $SLURM_ARRAY_TASK_COUNT, else 1")
    on_bad_record: str = option(
        "error", "malformed input line: 'error' (stop, naming file and line) or 'skip' (count it)"
    )
    seed: int = option(0, "random seed")
    allow_incomplete: bool = option(
        False, "read an input directory whose shard set is incomplete (missing or unfinished shards)"
    )

    def __post_init__(self) -> None:
        if self.shard_index is None:
            task = os.environ.get("SLURM_ARRAY_TASK_ID")
            self.shard_index = int(task) - int(os.environ.get("SLURM_ARRAY_TASK_MIN", "0")) if task else 0
        if self.num_shards is None:
            self.num_shards = int(os.environ.get("SLURM_ARRAY_TASK_COUNT", "1"))
        if not 0 <= self.shard_index < self.num_shards:
            raise ConfigError(f"shard_index {self.shard_index} is not in [0, {self.num_shards})")
        if self.on_bad_record not in ("error", "skip"):
            raise ConfigError(f"on_bad_record must be 'error' or 'skip', not {self.on_bad_record!r}")


def _parse_bool(text: str) -> bool:
    low = str(text).strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Convert a YAML or command-line value to the field's declared type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(name, args[0], value)
    if origin is list:
        (item,) = typing.get_args(tp) or (str,)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()] if value else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_coerce(name, item, v) for v in value]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        return value
    if tp in (int, float, str) and (isinstance(value, (list, dict)) or (tp is not str and isinstance(value, bool))):
        raise ConfigError(f"{name}: expected one {tp.__name__}, got {value!r}")  # a YAML list for a text option
    try:
        if tp is bool:
            return value if isinstance(value, bool) else _parse_bool(value)
        if tp in (int, float, str):
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
    except (ValueError, argparse.ArgumentTypeError):
        raise ConfigError(f"{name}: cannot read {value!r} as {tp.__name__}") from None
    return value


def load_recipe(path: str | Path, cls) -> dict[str, Any]:
    """Read a YAML recipe and check its keys against the dataclass."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of option: value")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown option(s) {', '.join(unknown)} for {cls.__name__}; known: {', '.join(sorted(known))}"
        )
    return data


def build_parser(cls, description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description or (cls.__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", metavar="YAML", help="recipe file; command-line options override it")
    hints = _field_types(cls)
    for f in dataclasses.fields(cls):
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
        )
        tp = hints[f.name]
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            metavar=_metavar(tp),
            help=f"{f.metadata.get('help', '')} (default: {shown})",
        )
    return parser


def _metavar(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        tp = [a for a in typing.get_args(tp) if a is not type(None)][0]
        origin = typing.get_origin(tp)
    if origin is list:
        return "A,B,..."
    return {bool: "BOOL", int: "INT", float: "FLOAT"}.get(tp, "STR")


def parse_config(cls, argv: list[str] | None = None, description: str | None = None):
    """Build a `cls` instance from defaults, an optional `--config` recipe and overrides."""
    parser = build_parser(cls, description)
    args = vars(parser.parse_args(sys.argv[1:] if argv is None else argv))
    values: dict[str, Any] = {}
    recipe = args.pop("config", None)
    try:
        if recipe:
            values.update(load_recipe(recipe, cls))
        values.update(args)
        return make_config(cls, values)
    except ConfigError as exc:
        parser.error(str(exc))


# Options whose nonsensical values are refused when the options are read, not deep inside a run.
AT_LEAST_ONE = (
    "batch_size",
    "encode_batch",
    "eval_batch_size",
    "max_tokens",
    "max_new_tokens",
    "step_max_tokens",
    "rationale_max_tokens",
    "concurrency",
    "n",
    "num_shards",
    "grad_accum",
)
NOT_NEGATIVE = ("max_retries", "max_chars", "limit", "temperature", "kv_cache_tokens", "max_batch_tokens")  # 0 = auto
FRACTIONS = ("dev_fraction", "min_faithfulness", "top_p", "warmup_ratio", "lora_dropout")
COSINES = ("threshold",)  # prefilter's cosine similarity; -1 keeps everything
# A negative tau is allowed: filter's gain threshold, where -1000 keeps every rationale (the test chains).


def check_ranges(cfg) -> None:
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if f.name in AT_LEAST_ONE and value < 1:
            raise ConfigError(f"{f.name} must be at least 1, not {value!r}")
        if f.name in NOT_NEGATIVE and value < 0:
            raise ConfigError(f"{f.name} must not be negative, not {value!r}")
        if f.name in FRACTIONS and not 0 <= value <= 1:
            raise ConfigError(f"{f.name} must be in [0, 1], not {value!r}")
        if f.name in COSINES and not -1 <= value <= 1:
            raise ConfigError(f"{f.name} is a cosine similarity: it must be in [-1, 1], not {value!r}")
        if f.name == "request_timeout" and value <= 0:
            raise ConfigError(f"request_timeout must be positive, not {value!r}")


def make_config(cls, values: dict[str, Any]):
    hints = _field_types(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for {cls.__name__}")
    cfg = cls(**{k: _coerce(k, hints[k], v) for k, v in values.items()})
    check_ranges(cfg)
    return cfg


def config_dict(cfg) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
