"""The Makefile's install guard: a disk too small for a venv stops before pip, with a message."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "-C", str(ROOT), *args], capture_output=True, text=True)


def test_check_disk_passes_when_enough_is_free():
    assert make("check-disk", "NEED_GB=0").returncode == 0


def test_check_disk_stops_with_the_space_needed_and_left():
    run = make("check-disk", "NEED_GB=1000000")
    assert run.returncode != 0
    assert "1000000 GB free needed" in run.stderr and "GB left" in run.stderr


@pytest.mark.parametrize("target", [".venv/.done", ".venv-vllm/.done"])
def test_each_venv_install_checks_the_disk_before_pip(target):
    commands = make("-n", "-B", target).stdout  # dry run: prints the recipe, installs nothing
    assert "df -Pk" in commands
    assert commands.index("df -Pk") < commands.index("pip install")
