"""bench/gpu_check.py (make gpu-check) in its reduced CPU mode, so that the script cannot rot before a GPU runs it."""

import re
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_gpu_check_runs_in_its_cpu_mode(capsys):
    sys.path.insert(0, str(REPO / "bench"))
    import gpu_check

    assert gpu_check.main(["--cpu"]) == 0
    out = capsys.readouterr().out
    for check in ("FSDP launch: train 2 steps", "resume from checkpoint-2 to 4 steps", "LoRA under FSDP refused"):
        assert f"| {check} | ok |" in out
    assert "| tokens/s at 4 layers, with checkpointing |" in out and "FAILED" not in out
    packing = next(line for line in out.splitlines() if line.startswith("| padding-free fine-tuning (sdpa_varlen)"))
    loss_packed, loss_padded = (float(x) for x in re.findall(r"loss (\S+) packed, (\S+) padded", packing)[0])
    assert abs(loss_packed - loss_padded) < 1e-4  # fp32 on the CPU: the same loss both ways


def test_gpu_check_refuses_a_machine_without_cuda_unless_cpu_mode(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    sys.path.insert(0, str(REPO / "bench"))
    import gpu_check

    assert gpu_check.main([]) == 2 and "use --cpu" in capsys.readouterr().err
