"""`make gpu-check`: what only a GPU can show, in one table, in under 8 minutes on one GPU, with no Hub model.

1. The exact FSDP path of slurm/60_finetune.sbatch: `accelerate launch --config_file configs/accelerate/fsdp.yaml
   -m training.finetune` on a tiny Llama built from a config (bf16): train 2 steps, the checkpoint sharded,
   final/ in bf16, resume to 4 steps, LoRA refused.
2. An 8B-shaped Llama (hidden 4096, 32 heads, 8 KV heads, MLP 14336, vocab 128256; LLaMA-3-8B's shapes) built
   from a config at 2 and 4 layers: the peak memory of one full fine-tuning step (fp32 weights, AdamW, bf16
   autocast, batch 2 x 1024 tokens) with and without activation checkpointing, the memory per layer, and the
   extrapolation to 32 layers under FSDP on 2, 4 and 8 GPUs (an estimate: weights, gradients and Adam states
   sharded, activations not).
3. Fine-tuning tokens per second at that shape and the model FLOPs utilisation (6 x the parameters other than
   the input embedding, per token; attention's own FLOPs left out, so a lower bound).
4. Padding-free fine-tuning (packed rows, the attention training.finetune sets for them) against padded batches
   at that shape, 2 layers, rows of varied lengths: the speed ratio beside the padding bound.
5. The finetune, REFINER and hf-backend tests on CUDA defaults (pytest, not slow).

    python bench/gpu_check.py            # on a GPU machine (make gpu-check)
    python bench/gpu_check.py --cpu      # reduced shapes on a CPU: the same code paths, run by the test suite
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BF16_PEAK_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A6000": 155e12}  # dense
SHAPE_8B = dict(hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8)
SHAPE_CPU = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2)
GIB = 2**30


def llama_config(layers: int, cpu: bool):
    from transformers import LlamaConfig

    shape, vocab = (SHAPE_CPU, 512) if cpu else (SHAPE_8B, 128256)
    return LlamaConfig(num_hidden_layers=layers, vocab_size=vocab, max_position_embeddings=2048, **shape)


# ----------------------------------------------------------------------------- 1. the FSDP path


def tiny_llama(path: Path) -> str:
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.conftest import _train_tokenizer  # the suite's offline BPE tokenizer with a chat template

    tok = _train_tokenizer()
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        num_hidden_layers=2,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
        **SHAPE_CPU,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def accelerate_config(work: Path, cpu: bool) -> Path:
    """The shipped FSDP config; on a CPU its variant (use_cpu, fp32, no module-state broadcast, which needs a GPU)."""
    import yaml

    cfg = yaml.safe_load((REPO / "configs" / "accelerate" / "fsdp.yaml").read_text())
    cfg["num_processes"] = 1 if cpu else max(1, torch.cuda.device_count())
    if cpu:
        cfg.update(use_cpu=True, mixed_precision="no")
        cfg["fsdp_config"].update(fsdp_sync_module_states=False, fsdp_cpu_ram_efficient_loading=False)
    path = work / "fsdp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def fsdp_path(work: Path, cpu: bool) -> list[tuple[str, bool, str]]:
    from safetensors import safe_open

    model = tiny_llama(work / "tiny-llama")
    data = work / "train.jsonl"
    rows = [
        {"preceding": f"Natalia sold {i} clips in April.", "rationale": f"Next add {i} and {i}."} for i in range(16)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config, out = accelerate_config(work, cpu), work / "finetune"

    def launch(*extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "-m"]
        cmd += ["training.finetune", "--train", str(data), "--dev", str(data), "--output", str(out), "--model", model]
        cmd += ["--batch-size", "2", "--grad-accum", "1", "--eval-steps", "2", "--lr", "3e-3"]
        cmd += ["--precision", "fp32" if cpu else "bf16", *extra]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)

    results = []
    first = launch("--max-steps", "2")
    results.append(("FSDP launch: train 2 steps", first.returncode == 0, _tail(first)))
    if first.returncode != 0:
        return results
    ckpt = out / "checkpoints" / "checkpoint-2"
    sharded = any(p.name.startswith("pytorch_model_fsdp") for p in ckpt.iterdir())
    if not cpu:  # on a CPU accelerate runs the processes data-parallel: no FSDP checkpoint to look at
        results.append(
            ("checkpoint sharded (no full gather)", sharded, ", ".join(sorted(p.name for p in ckpt.iterdir())))
        )
    with safe_open(out / "final" / "model.safetensors", "pt") as f:
        dtypes = sorted({str(f.get_tensor(k).dtype) for k in f.keys()})
    want = "torch.float32" if cpu else "torch.bfloat16"
    results.append(("final/ is a full model in the training dtype", dtypes == [want], ", ".join(dtypes)))
    (out / "metrics.json").unlink()
    second = launch("--max-steps", "4")
    resumed = second.returncode == 0 and (json.loads((out / "metrics.json").read_text())["resumed_from"] or "")
    results.append(("resume from checkpoint-2 to 4 steps", str(resumed).endswith("checkpoint-2"), _tail(second)))
    lora = launch("--max-steps", "2", "--lora", "true")
    refused = lora.returncode != 0 and "under FSDP is not supported" in lora.stderr
    results.append(("LoRA under FSDP refused", refused, "clear error" if refused else _tail(lora)))
    return results


def _tail(proc: subprocess.CompletedProcess) -> str:
    if proc.returncode == 0:
        return "ok"
    return " | ".join(line for line in proc.stderr.strip().splitlines()[-3:])[-300:]


# ----------------------------------------------------------------------------- 2-3. memory and speed


def train_step_stats(layers: int, checkpointing: bool, cpu: bool, batch: int, seq: int, steps: int) -> dict:
    """Peak memory and time of full fine-tuning steps on one device: fp32 weights, AdamW, bf16 autocast on a GPU."""
    from transformers import LlamaForCausalLM

    device = "cpu" if cpu else "cuda"
    torch.manual_seed(0)
    with torch.device(device):  # built on the device: a 2-billion-parameter CPU init takes longer than the steps
        model = LlamaForCausalLM(llama_config(layers, cpu))
    model.config.use_cache = False
    if checkpointing:
        getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=not cpu)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), device=device)
    params = sum(p.numel() for p in model.parameters())
    matmul_params = params - model.get_input_embeddings().weight.numel()  # a lookup, no FLOPs
    if not cpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=not cpu):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if not cpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if not cpu else 0
    del model, opt
    if not cpu:
        torch.cuda.empty_cache()
    step = min(times[1:] or times)  # the first step allocates the optimizer states
    tokens_s = batch * seq / step
    return {"layers": layers, "params": params, "matmul_params": matmul_params, "peak": peak, "tokens_s": tokens_s}


def params_at(layers: int, cpu: bool) -> int:
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        return sum(p.numel() for p in LlamaForCausalLM(llama_config(layers, cpu)).parameters())


def memory_rows(cpu: bool) -> tuple[list[tuple[str, bool, str]], list[str]]:
    batch, seq, steps = (2, 64, 2) if cpu else (2, 1024, 4)
    checks, table = [], []
    peak_flops = next((v for k, v in BF16_PEAK_FLOPS.items() if k in _device_name()), None)
    for ckpt in (False, True):
        two, four = (train_step_stats(n, ckpt, cpu, batch, seq, steps) for n in (2, 4))
        label = "with" if ckpt else "without"
        checks.append((f"8B-shaped Llama, 2 and 4 layers, {label} activation checkpointing", True, "ran"))
        mfu = "n/a"
        if peak_flops:
            mfu = f"{6 * four['matmul_params'] * four['tokens_s'] / peak_flops:.0%}"
        table.append(f"| tokens/s at 4 layers, {label} checkpointing | {four['tokens_s']:,.0f} | MFU {mfu} |")
        if cpu:
            continue
        per_layer = (four["peak"] - two["peak"]) / 2
        states_per_param = 16  # fp32 weight, gradient, Adam m and v
        act_per_layer = per_layer - states_per_param * (four["params"] - two["params"]) / 2
        rest = two["peak"] - states_per_param * two["params"] - 2 * act_per_layer  # logits, embeddings, buffers
        table.append(
            f"| memory per layer {label} checkpointing (measured) | {per_layer / GIB:.2f} GiB | "
            f"activations {act_per_layer / GIB:.2f} GiB of it; peak at 2 layers {two['peak'] / GIB:.1f} GiB |"
        )
        states_32 = states_per_param * params_at(32, cpu)
        for gpus in (2, 4, 8):
            need = states_32 / gpus + 32 * act_per_layer + rest
            table.append(
                f"| 32 layers on {gpus} GPUs, {label} checkpointing (extrapolated) | {need / GIB:.0f} GiB per GPU | "
                f"states {states_32 / gpus / GIB:.0f} + activations {32 * act_per_layer / GIB:.0f} + rest "
                f"{rest / GIB:.0f} |"
            )
    return checks, table


def packing_rows(cpu: bool) -> list[str]:
    """Padding-free fine-tuning as training.finetune runs it (packed rows, common.training.use_packed_attention)
    against padded batches under sdpa: forward + backward tokens per second on rows of varied lengths at the
    8B shape, 2 layers, with the padding bound (padded tokens over real ones) beside the ratio."""
    from transformers import LlamaForCausalLM

    from common.training import collate, packed_collator, use_packed_attention

    device = "cpu" if cpu else "cuda"
    seq, rows, steps = (64, 4, 2) if cpu else (1024, 8, 3)
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(seq // 4, seq + 1, (rows,), generator=gen).tolist()
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(llama_config(2, cpu))
    model.config.use_cache = False
    model.train()
    examples = [torch.randint(0, model.config.vocab_size, (n,), generator=gen).tolist() for n in lengths]
    examples = [{"input_ids": ids, "labels": ids} for ids in examples]
    padded = {k: v.to(device) for k, v in collate(0)(examples).items()}
    packed = {k: v.to(device) for k, v in packed_collator()(examples).items()}
    attention = use_packed_attention(model, bf16=not cpu)

    def seconds(batch: dict, implementation: str) -> tuple[float, float]:
        model.set_attn_implementation(implementation)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            with torch.autocast(device, dtype=torch.bfloat16, enabled=not cpu):
                loss = model(**batch).loss
            loss.backward()
            model.zero_grad(set_to_none=True)
            if not cpu:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return min(times[1:] or times), loss.item()

    (t_packed, loss_packed), (t_padded, loss_padded) = seconds(packed, attention), seconds(padded, "sdpa")
    ratio, bound = t_padded / t_packed, padded["input_ids"].numel() / sum(lengths)
    return [
        f"| padding-free fine-tuning ({attention}), 2 layers, {rows} rows of {min(lengths)}-{max(lengths)} tokens | "
        f"{ratio:.2f}x the padded tokens/s | padding bound {bound:.2f}x ({ratio / bound:.0%}); "
        f"loss {loss_packed:.4f} packed, {loss_padded:.4f} padded |"
    ]


def _device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


# ----------------------------------------------------------------------------- 5. tests on CUDA defaults


def suite_on_cuda() -> tuple[str, bool, str]:
    files = ["tests/test_finetune.py", "tests/test_train_refiner.py", "tests/test_llm_hf.py"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "not slow and not vllm", "-p", "no:cacheprovider", *files]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=420)
    summary = (done.stdout.strip().splitlines() or ["no output"])[-1]
    return ("finetune, REFINER, hf-backend tests on CUDA defaults", done.returncode == 0, summary)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="reduced shapes on a CPU (the test suite runs this)")
    p.add_argument("--skip-tests", action="store_true", help="leave out the pytest run")
    args = p.parse_args(argv)
    if not args.cpu and not torch.cuda.is_available():
        print("gpu_check: no CUDA device; use --cpu for the reduced mode", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        checks = fsdp_path(Path(tmp), args.cpu)
    mem_checks, table = memory_rows(args.cpu)
    checks += mem_checks
    table += packing_rows(args.cpu)
    if not args.cpu and not args.skip_tests:
        checks.append(suite_on_cuda())
    name = _device_name()
    print(f"\n## gpu-check on {name} (torch {torch.__version__}), {time.time() - started:.0f} s\n")
    print("| check | result | detail |\n|---|---|---|")
    for what, ok, detail in checks:
        print(f"| {what} | {'ok' if ok else 'FAILED'} | {detail} |")
    for row in table:
        print(row)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
