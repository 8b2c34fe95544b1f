"""Running on the CPU (merlib.cpu): the allocator tuning, choosing bf16, and what bf16 changes in the outputs.

bf16 is compared with float32 on the golden weights (the reference's outputs, ``tests/data``) and in a short
training run. On a CPU without native bf16 (AVX512-BF16 or AMX) these tests still run — oneDNN emulates it,
about ten times slower than float32 — so they are kept small.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from merlib import cpu
from merlib.models.checkpoints import golden_fill, golden_waveforms, load_reference_checkpoint, read_key_table
from merlib.models.htsat import HTSAT, HTSATConfig
from merlib.training import TrainConfig, resolve_launch

DATA = Path(__file__).parent / "data"

# ------------------------------------------------------------------------------------------- allocator

_MMAPPED = """
import ctypes, json, sys
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
from merlib.cpu import allocator_state, tune_allocator
tuned = tune_allocator()
import torch
x = torch.ones(64 * 2**20 // 4)  # 64 MB: above glibc's largest mmap threshold (32 MB)
print(json.dumps({"tuned": tuned, "state": allocator_state(), "mmapped_mb": libc.mallinfo2().hblkhd / 2**20}))
"""


def _glibc_with_mallinfo2() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallinfo2  # noqa: B018
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


def _mmapped(env: dict[str, str]) -> dict:
    import json
    import os

    out = subprocess.run([sys.executable, "-c", _MMAPPED], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="the allocator tuning is glibc's (Linux); elsewhere a no-op")
def test_tuned_allocator_keeps_large_tensors_in_the_heap():
    """Tuned, a 64 MB tensor comes from the heap (reusable, no page faults on the next one); with
    ``MERLIB_ALLOCATOR=system`` glibc maps it from the kernel, as before."""
    tuned = _mmapped({"MERLIB_ALLOCATOR": ""})
    assert tuned["tuned"] and tuned["mmapped_mb"] < 1, tuned
    system = _mmapped({"MERLIB_ALLOCATOR": "system"})
    assert not system["tuned"] and system["state"]["reason"] == "MERLIB_ALLOCATOR=system"
    assert system["mmapped_mb"] >= 64, system


def test_tune_allocator_is_idempotent():
    first = cpu.tune_allocator()
    assert cpu.tune_allocator() == first == cpu.allocator_state()["tuned"]
    cpu.release_memory()  # callable whatever the platform


# ------------------------------------------------------------------------------------------- precision


def test_auto_precision_is_bf16_only_where_it_is_native(monkeypatch):
    monkeypatch.setattr(cpu, "bf16_support", lambda: (False, "emulated"))
    assert cpu.resolve_precision("auto", "cpu") == "fp32"
    assert cpu.resolve_precision(None, "cpu") == "fp32"
    assert cpu.resolve_precision("auto", "cuda") == "bf16"
    with pytest.warns(UserWarning, match="emulated"):
        assert cpu.resolve_precision("bf16-mixed", "cpu") == "bf16"  # asked for: kept, with the reason
    assert resolve_launch(TrainConfig.quick(precision="auto", accelerator="cpu"))["precision"] == "32-true"

    monkeypatch.setattr(cpu, "bf16_support", lambda: (True, "AVX512-BF16"))
    assert cpu.resolve_precision("auto", "cpu") == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cpu.resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_launch(TrainConfig.quick(precision="auto", accelerator="cpu"))["precision"] == "bf16-mixed"
    with pytest.raises(ValueError, match="precision must be one of"):
        cpu.resolve_precision("fp8", "cpu")


def test_bf16_support_follows_the_processor():
    """Native exactly when torch's CPU probe finds AVX512-BF16 or AMX tiles; the reason names them."""
    native, why = cpu.bf16_support()
    assert native == bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    assert ("emulated" in why) != native and ("AMX" in why or "AVX512-BF16" in why)


# ------------------------------------------------------------------------------------ bf16 against fp32


def test_bf16_logits_agree_with_float32_on_the_golden_weights():
    """Paper-size Sum PE with the golden weights, two 3-microphone clips: under CPU bf16 autocast the logits
    and embeddings stay within 2 % (relative, as a whole) of float32, the probabilities within 0.01, and the
    predicted classes are the same. (Measured: 0.9 % and 0.6 %, probabilities within 0.003.)"""
    golden = np.load(DATA / "golden_reference_outputs.npz")
    model = HTSAT(num_mics=3, mode="sum_pe", num_classes=8)
    state = golden_fill(model, golden["melW_32k"], read_key_table(DATA / "mmer_state_dict_keys.tsv"))
    load_reference_checkpoint(model, {"state_dict": {"sed_model." + k: v for k, v in state.items()}})
    model.eval()
    x = golden_waveforms(3)
    with torch.inference_mode():
        full = model(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "emulated" on CPUs without native bf16
            with cpu.autocast("cpu", "bf16"):
                half = model(x)
    assert half.logits.dtype == torch.bfloat16  # autocast did run the model in bf16
    for name in ("logits", "embedding"):
        a, b = getattr(full, name), getattr(half, name).float()
        assert (a - b).norm() / a.norm() < 0.02, name
    assert (full.logits.softmax(-1) - half.logits.float().softmax(-1)).abs().max() < 0.01
    assert torch.equal(full.logits.argmax(1), half.logits.argmax(1))


def _tones(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """4 classes of harmonic tones a fourth-ish apart (±3 % pitch, random phase, noise): learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    label = torch.arange(n) % 4
    f0 = 150 * 2 ** (label.float() * 0.75) * (1 + 0.03 * torch.randn(n, generator=g))
    t = torch.arange(64000) / 16000
    phase = 2 * torch.pi * torch.rand(n, 1, generator=g)
    x = sum(0.05 / h * torch.sin(2 * torch.pi * h * f0[:, None] * t + h * phase) for h in (1, 2, 3))
    return (x + 0.01 * torch.randn(n, 64000, generator=g))[:, None], label


def _train_and_score(precision: str, steps: int = 12) -> tuple[float, float, float]:
    xtr, ytr = _tones(32, 0)
    xte, yte = _tones(16, 1)
    torch.manual_seed(0)
    model = HTSAT(1, "avg_mel", num_classes=4, config=HTSATConfig.quick())
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def accuracy() -> float:
        model.eval()
        with torch.inference_mode(), cpu.autocast("cpu", precision):
            return float((model(xte).logits.argmax(1) == yte).float().mean())

    before = accuracy()
    for step in range(steps):
        i = torch.randperm(32, generator=torch.Generator().manual_seed(step))[:8]
        model.train()
        with cpu.autocast("cpu", precision):
            loss = F.cross_entropy(model(xtr[i]).logits.float(), ytr[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, accuracy(), float(loss)


@pytest.mark.slow
def test_a_short_bf16_training_run_reaches_the_float32_accuracy():
    """12 Adam steps of the quick audio model on a 4-class tone task, in float32 and under bf16 autocast from
    the same start: both go from chance to ≥ 90 % on 16 held-out clips, within one clip of each other, with
    final losses within 0.05. (~2 s in float32; ~20 s in bf16 on a CPU that emulates it.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp32 = _train_and_score("fp32")
        bf16 = _train_and_score("bf16")
    assert fp32[0] <= 0.5 and bf16[0] <= 0.5, (fp32, bf16)  # untrained: near chance (25 %)
    assert fp32[1] >= 0.9 and bf16[1] >= 0.9, (fp32, bf16)
    assert abs(fp32[1] - bf16[1]) <= 1 / 16 and abs(fp32[2] - bf16[2]) < 0.05, (fp32, bf16)
    assert np.isfinite(bf16[2])
