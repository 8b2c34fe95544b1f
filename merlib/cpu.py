"""Running fast on the CPU: the memory allocator, and whether bf16 pays on this processor.

Notebook: 06_fusion_training.ipynb (the training loop and the prediction loop call these for you).

Two things decide how fast merlib's models run on a CPU, besides the number of cores:

* **The allocator.** A training step of the paper-size models allocates and frees tensors of 50–500 MB
  hundreds of times. glibc's ``malloc`` hands every block above 32 MB to the kernel (``mmap``) and returns it
  on ``free``, so every such tensor is faulted in again page by page, and large freed heaps are trimmed back
  to the kernel too. :func:`tune_allocator` keeps freed memory in the process instead (``mallopt``:
  no ``mmap`` for large blocks, no trimming), which is what the PyTorch CPU tuning guide gets by preloading
  jemalloc or tcmalloc (https://pytorch.org/tutorials/recipes/recipes/tuning_guide.html, "Switch memory
  allocator") — without a new dependency. Measured on 2 cores (``benchmarks/README.md``, against the same code with
  glibc's defaults): the paper-size audio Sum PE trains ~1.1× and MER Sum PE ~1.9× faster. The price is that the process keeps
  its peak memory until it ends (or until :func:`release_memory`). merlib's entry points (the ``merlib``
  command, :func:`merlib.training.train`, :func:`merlib.evaluation.predict`, the acoustic lab) call it;
  ``MERLIB_ALLOCATOR=system`` in the environment turns it off. It does nothing outside Linux with glibc.
* **bf16.** Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` matrix products and convolutions run in
  bfloat16. That is faster only where the processor computes bf16 dot products natively — AVX512-BF16 (AMD
  Zen 4 and later, Intel Cooper Lake and later) or AMX (Intel Sapphire Rapids and later). Elsewhere (AVX2-only
  processors such as AMD Zen 3 or most laptops before 2023) oneDNN emulates it and a step is several times
  *slower*. :func:`bf16_support` says which case this machine is; :func:`resolve_precision` turns
  ``"auto"`` into bf16 only where it pays, and warns when bf16 is asked for where it does not.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["tune_allocator", "release_memory", "bf16_support", "resolve_precision", "autocast", "allocator_state"]

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_state: dict[str, Any] = {"tuned": False, "reason": "not asked yet"}


def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        try:
            libc = ctypes.CDLL("libc.so.6")  # glibc's name; find_library would spawn ldconfig or a compiler
        except OSError:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        getattr(libc, "mallopt")
        getattr(libc, "gnu_get_libc_version")
    except (OSError, AttributeError):
        return None  # not glibc (musl, …)
    return libc


def tune_allocator(enable: bool | None = None) -> bool:
    """Keep freed memory in the process (glibc ``mallopt``): large tensors are reused instead of faulted in
    again. Idempotent; returns whether the tuning is in effect.

    ``enable=None`` follows the environment: on unless ``MERLIB_ALLOCATOR=system``. ``enable=False`` restores
    glibc's defaults (mmap for large blocks, trimming above 128 KiB) for what is allocated from then on.
    """
    if enable is None:
        enable = os.environ.get("MERLIB_ALLOCATOR", "").strip().lower() not in ("system", "0", "off", "false")
        if not enable:
            _state.update(tuned=False, reason="MERLIB_ALLOCATOR=system")
            return False
    if bool(enable) == _state["tuned"]:
        return _state["tuned"]
    libc = _glibc()
    if libc is None:
        _state.update(tuned=False, reason="not Linux with glibc")
        return False
    if enable:
        # 0 mmapped blocks: every allocation comes from the heap; trim threshold "infinite" (-1 is SIZE_MAX).
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, -1) == 1
        _state.update(tuned=ok, reason="mallopt: no mmap, no trim" if ok else "mallopt refused")
    else:
        libc.mallopt(_M_MMAP_MAX, 65536)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
        _state.update(tuned=False, reason="restored glibc defaults")
    return _state["tuned"]


def allocator_state() -> dict[str, Any]:
    """``{"tuned": bool, "reason": str}``: what :func:`tune_allocator` did in this process (for run records)."""
    return dict(_state)


def release_memory() -> None:
    """Give the heap's free memory back to the kernel now (glibc ``malloc_trim``); a no-op elsewhere."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def bf16_support() -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and in words why (AVX512-BF16, AMX, or emulated)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    amx = bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)())
    avx512_bf16 = bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())
    if amx:
        return True, "the CPU has AMX tiles: bf16 matrix products run natively"
    if avx512_bf16:
        return True, "the CPU has AVX512-BF16: bf16 dot products run natively"
    return False, ("the CPU has neither AVX512-BF16 nor AMX: bf16 is emulated in float32 and runs slower than "
                   "float32")


def resolve_precision(precision: str | None, device_type: str = "cpu") -> str:
    """``"fp32"`` or ``"bf16"`` for ``precision`` in ``None``/``"fp32"``/``"bf16"``/``"auto"`` on ``device_type``.

    ``"auto"`` is bf16 on a GPU and on a CPU with native bf16 (:func:`bf16_support`), fp32 elsewhere. ``"bf16"``
    on a CPU without it is kept (the results are valid) with a warning that it is slower there.
    """
    p = "fp32" if precision is None else str(precision).lower()
    aliases = {"fp32": "fp32", "32": "fp32", "32-true": "fp32", "float32": "fp32",
               "bf16": "bf16", "bfloat16": "bf16", "bf16-mixed": "bf16", "auto": "auto"}
    if p not in aliases:
        raise ValueError(f"precision must be one of 'fp32', 'bf16', 'auto', got {precision!r}")
    p = aliases[p]
    if device_type != "cpu":
        return "bf16" if p == "auto" else p
    native, why = bf16_support()
    if p == "auto":
        return "bf16" if native else "fp32"
    if p == "bf16" and not native:
        warnings.warn(f"bf16 on this CPU: {why}; use fp32 (or 'auto') for speed", stacklevel=2)
    return p


@contextlib.contextmanager
def autocast(device_type: str, precision: str | None) -> Iterator[None]:
    """``torch.autocast(device_type, bfloat16)`` when ``precision`` resolves to bf16, else nothing."""
    import torch

    if resolve_precision(precision, device_type) == "bf16":
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
            yield
    else:
        yield
