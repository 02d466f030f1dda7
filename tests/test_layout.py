"""The layout's rules: stage scripts import only the library (common/), never each other, and the library
never imports a stage."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

STAGE_PACKAGES = ("sampling", "training", "model_inference")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def first_party(path: Path) -> list[str]:
    return sorted(m for m in imported_modules(path) if m.split(".")[0] in (*STAGE_PACKAGES, "common"))


@pytest.mark.parametrize(
    "path", sorted(p for d in STAGE_PACKAGES for p in (REPO / d).glob("*.py")), ids=lambda p: str(p.relative_to(REPO))
)
def test_a_stage_imports_only_the_library(path):
    stages = [m for m in first_party(path) if m.split(".")[0] in STAGE_PACKAGES]
    assert not stages, f"{path.relative_to(REPO)} imports stage modules {stages}: move what they share into common/"


def test_the_library_imports_no_stage():
    offenders = {
        str(p.relative_to(REPO)): [m for m in first_party(p) if m.split(".")[0] in STAGE_PACKAGES]
        for p in (REPO / "common").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_the_check_sees_a_stage_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from training.finetune import main\nimport sampling.prefilter\nfrom common import models\n")
    assert first_party(bad) == [
        "common",
        "common.models",
        "sampling.prefilter",
        "training.finetune",
        "training.finetune.main",
    ]
