"""Room impulse responses: merlib's image-source + diffuse-tail simulator, with gpuRIR and pyroomacoustics backends.

Notebook: 01_rir_simulation.ipynb

The paper simulated its training rooms with gpuRIR: an image-source model (ISM) up to a diffuse-onset time
``t_diff``, then a noise tail whose envelope decays at the room's Sabine T60. gpuRIR is CUDA-only, not on
PyPI and AGPL, so merlib implements the same published algorithm in PyTorch from the math in
``docs/room-acoustics.md`` §1.3 and §2.1 (never from gpuRIR's source). The same code runs on CPU and GPU.

Conventions of the ``"merlib"`` backend (gpuRIR-compatible):

- β are **amplitude** reflection coefficients [βx0, βx1, βy0, βy1, βz0, βz1]; every reflection flips the sign
  (negative β), which makes the RIR zero-mean without a high-pass filter.
- An image at distance d contributes amplitude 1/(4π·d) at delay d/c·fs samples, with **no global delay**:
  the direct path peaks at round(d/c·fs). The absolute scale does not matter once the reverberant speech is
  mixed at a fixed SNR; normalising is left to the caller.
- Each arrival is a Hann-windowed sinc of width Tw = 8 ms (fractional delay). Exactly evaluating it means
  128 taps per image and ~10^5 images per RIR. Instead, each tap's value as a function of the arrival's
  fractional delay φ ∈ [0, 1) is expanded in Chebyshev polynomials of degree ``poly_degree`` (10: error
  below 1e-9 of the arrival's amplitude, far under float32 resolution): each image adds a·T_p(2φ − 1) to
  row p of an impulse grid at its integer delay, and the response is the sum of ``poly_degree + 1`` FFT
  convolutions of those rows with fixed filters. ``poly_degree=None`` evaluates every tap directly (slow;
  the tests use it as the reference).
- ``N = ceil(t_max·fs)`` and ``N_ism = ceil(t_diff·fs)``, each rounded up to even. Samples ``< N_ism`` are the
  ISM; samples ``>= N_ism`` are the diffuse tail: unit-variance logistic noise, independent per
  (source, microphone) pair, scaled to continue the power of the last 10 ms of the ISM and decaying 60 dB in
  the Sabine T60 of the given β. The noise comes from the caller's ``torch.Generator`` (gpuRIR's seed is fixed).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from .theory import SPEED_OF_SOUND, t60_from_beta

if TYPE_CHECKING:  # pragma: no cover
    from .scenes import Scene

BACKENDS = ("merlib", "gpurir", "pyroomacoustics")

#: Width of each arrival's windowed sinc, in seconds (gpuRIR's Tw).
SINC_WINDOW_S = 8e-3
#: Length of the ISM window whose power the diffuse tail continues, in seconds.
TAIL_MATCH_WINDOW_S = 10e-3
#: Default degree of the Chebyshev expansion of the windowed sinc in the fractional delay.
DEFAULT_POLY_DEGREE = 10

#: Intra-op threads the merlib backend uses on CPU (``None``: leave torch's setting alone). Its tensors are
#: small (~10^5-10^6 elements), so OpenMP synchronisation costs more than a second thread saves, and it
#: becomes many times slower when other processes compete for the cores (measured on a busy 2-core machine:
#: ~110 scenes/s with 1 thread vs 6-20 with 2). Parallelise over scenes with worker processes instead.
CPU_NUM_THREADS: int | None = 1

_FILTER_CACHE: dict[tuple, torch.Tensor] = {}


@contextlib.contextmanager
def _cpu_threads(dev: torch.device):
    """Temporarily set torch's intra-op thread count to ``CPU_NUM_THREADS`` for a CPU computation."""
    before = torch.get_num_threads()
    change = dev.type == "cpu" and CPU_NUM_THREADS is not None and CPU_NUM_THREADS != before
    if change:
        torch.set_num_threads(CPU_NUM_THREADS)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(before)


def _even_ceil(x: float) -> int:
    n = int(math.ceil(x))
    return n + (n % 2)


def rir_length(t_max: float, fs: float) -> int:
    """Number of samples of a simulated RIR: ``ceil(t_max·fs)`` rounded up to even."""
    return _even_ceil(t_max * fs)


def _as_positions(x, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if torch.is_tensor(x) else x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != 3 or a.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, 3) in metres, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite coordinates")
    return a


def _check_inputs(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff):
    room = np.asarray(room_dim, dtype=np.float64).reshape(-1)
    if room.shape != (3,) or np.any(room <= 0):
        raise ValueError(f"room_dim must be [Lx, Ly, Lz] > 0 in metres, got {room_dim!r}")
    b = np.asarray(beta, dtype=np.float64).reshape(-1)
    if b.shape != (6,) or np.any(b < 0) or np.any(b > 1):
        raise ValueError(f"beta must be 6 reflection coefficients in [0, 1] (x0, x1, y0, y1, z0, z1), got {beta!r}")
    src = _as_positions(src, "src")
    mics = _as_positions(mics, "mics")
    for name, p in (("source", src), ("microphone", mics)):
        outside = np.any((p <= 0) | (p >= room[None, :]), axis=1)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(f"{name} {i} at {p[i].tolist()} is not strictly inside the room {room.tolist()}")
    nb = [int(n) for n in nb_img]
    if len(nb) != 3 or min(nb) < 1:
        raise ValueError(f"nb_img must be three positive image counts per axis (see t2n), got {nb_img!r}")
    if not (t_max > 0):
        raise ValueError(f"t_max must be > 0 s, got {t_max!r}")
    if t_diff is None:
        t_diff = t_max
    if not (0 < t_diff <= t_max):
        raise ValueError(f"t_diff must be in (0, t_max] = (0, {t_max}], got {t_diff!r}")
    if not (fs > 0):
        raise ValueError(f"fs must be > 0 Hz, got {fs!r}")
    return room, b, src, mics, nb, float(t_max), float(fs), float(t_diff)


def simulate_rir(
    room_dim: Sequence[float],
    beta: Sequence[float],
    src,
    mics,
    nb_img: Sequence[int],
    t_max: float,
    fs: float,
    t_diff: float | None = None,
    c: float = SPEED_OF_SOUND,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    backend: str = "merlib",
) -> torch.Tensor:
    """Simulate the RIRs from every source to every microphone of a shoebox room.

    Args:
        room_dim: [Lx, Ly, Lz] in metres.
        beta: six amplitude reflection coefficients [βx0, βx1, βy0, βy1, βz0, βz1] (see ``beta_from_t60``).
        src: (S, 3) source positions; mics: (M, 3) microphone positions, strictly inside the room.
        nb_img: images per axis [nx, ny, nz] (grid indices, not a reflection order; see ``t2n``).
        t_max: RIR length in seconds; fs: sample rate in Hz.
        t_diff: diffuse-onset time in seconds (``att2t(15, T60)`` in the paper protocol). ``None`` means
            ``t_max``: pure image sources, no random draw.
        c: speed of sound in m/s.
        generator: ``torch.Generator`` for the diffuse tail (``None``: torch's global CPU generator). The noise is
            drawn on the generator's device and moved to ``device``, so CPU and CUDA give the same RIR for the
            same seed.
        device: where to compute (``"cpu"``, ``"cuda"``, ...); the result lives there.
        backend: ``"merlib"`` (default, this module's PyTorch implementation), ``"gpurir"`` (needs ``import gpuRIR``
            and a CUDA GPU; its tail seed is fixed and ``generator`` is ignored) or ``"pyroomacoustics"``
            (full image-source model up to the order covering ``t_max``, an independent cross-check; ignores
            ``nb_img``, ``t_diff`` and ``generator``; see ``_simulate_pyroomacoustics``).

    Returns:
        float32 tensor (S, M, N) with ``N = ceil(t_max·fs)`` rounded up to even.

    Raises:
        ValueError: positions outside the room, inconsistent times, or (merlib) a direct path arriving after
            ``t_diff`` when a tail is requested (the tail would be silently all zeros in gpuRIR).
    """
    if backend == "merlib":
        return _simulate_merlib(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff, c, generator, device)
    if backend == "gpurir":
        return _simulate_gpurir(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff, c, generator, device)
    if backend == "pyroomacoustics":
        return _simulate_pyroomacoustics(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff, c, device)
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


def simulate_scene(
    scene: "Scene",
    backend: str = "merlib",
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """RIRs (C, N) from ``scene.src`` to each of ``scene.mics`` with the scene's β, t_diff, t_max and fs."""
    out = simulate_rir(
        scene.room_dim,
        scene.beta,
        np.asarray(scene.src, dtype=np.float64)[None, :],
        scene.mics,
        scene.nb_img,
        scene.t_max,
        scene.fs,
        t_diff=scene.t_diff,
        c=scene.c,
        generator=generator,
        device=device,
        backend=backend,
    )
    return out[0]


# ----------------------------------------------------------------------------------------------------------------
# merlib backend
# ----------------------------------------------------------------------------------------------------------------


def _window_half(fs: float) -> tuple[float, int]:
    tw = round(SINC_WINDOW_S * fs)  # window length in samples (128 at 16 kHz)
    return tw / 2.0, int(math.ceil(tw / 2.0))


def _windowed_sinc(x: torch.Tensor, half: float) -> torch.Tensor:
    """Hann-windowed sinc w(x)·sinc(x), zero for |x| >= half (x in samples, half = Tw/2)."""
    w = 0.5 * (1.0 + torch.cos(math.pi * x / half))
    return torch.where(x.abs() < half, w * torch.sinc(x), torch.zeros_like(x))


def _chebyshev_filters(fs: float, degree: int, device: torch.device) -> torch.Tensor:
    """(degree + 1, 2K + 1) filters c_p[k] with w·sinc(k − φ) ≈ Σ_p c_p[k]·T_p(2φ − 1) for φ ∈ [0, 1], taps
    k = -K..K (least-squares fit at 4·(degree + 1) Chebyshev nodes, i.e. near-minimax)."""
    key = (float(fs), int(degree), str(device))
    if key not in _FILTER_CACHE:
        half, k_half = _window_half(fs)
        n_nodes = 4 * (degree + 1)
        x = np.cos(np.pi * (np.arange(n_nodes) + 0.5) / n_nodes)
        k = np.arange(-k_half, k_half + 1, dtype=np.float64)
        table = _windowed_sinc(torch.as_tensor(k[None, :] - (x[:, None] + 1.0) / 2.0), half).numpy()
        vander = np.polynomial.chebyshev.chebvander(x, degree)
        coef = np.linalg.lstsq(vander, table, rcond=None)[0]
        _FILTER_CACHE[key] = torch.as_tensor(coef, dtype=torch.float64, device=device)
    return _FILTER_CACHE[key]


def _axis_images(n_img: int, length: float, src: torch.Tensor, rcv: torch.Tensor, b0: float, b1: float):
    """Per-axis image offsets (R, n_img) relative to each receiver, and signed attenuations (n_img,).

    Grid index n -> k = n - floor(N/2), cluster q = ceil(k/2), reflection flag r = |k| mod 2;
    image coordinate q·2L + (1 - 2r)·x_src; attenuation (-β0)^|q-r|·(-β1)^|q| (docs/room-acoustics.md §1.3).
    """
    dev = src.device
    k = torch.arange(n_img, device=dev, dtype=torch.int64) - n_img // 2
    q = -torch.div(-k, 2, rounding_mode="floor")  # ceil(k / 2)
    r = k.abs() % 2
    pos = (q * 2).to(torch.float64)[None, :] * length + (1 - 2 * r).to(torch.float64)[None, :] * src[:, None]
    offset = pos - rcv[:, None]
    e0 = (q - r).abs().to(torch.float64)
    e1 = q.abs().to(torch.float64)
    sign = 1.0 - 2.0 * ((e0 + e1) % 2)  # negative β: each reflection flips the sign
    att = sign * torch.pow(torch.tensor(b0, dtype=torch.float64, device=dev), e0) * torch.pow(
        torch.tensor(b1, dtype=torch.float64, device=dev), e1
    )
    return offset, att


def _image_arrivals(room, beta, src_r, rcv_r, nb, fs, c, limit, x_chunk):
    """Yield (receiver index, delay in samples, amplitude) of the images arriving before ``limit`` samples,
    in chunks over the x image index (to bound memory for long pure-ISM responses)."""
    ox, ax = _axis_images(nb[0], room[0], src_r[:, 0], rcv_r[:, 0], beta[0], beta[1])
    oy, ay = _axis_images(nb[1], room[1], src_r[:, 1], rcv_r[:, 1], beta[2], beta[3])
    oz, az = _axis_images(nb[2], room[2], src_r[:, 2], rcv_r[:, 2], beta[4], beta[5])
    n_r = src_r.shape[0]
    ryz = (oy[:, :, None] ** 2 + oz[:, None, :] ** 2)[:, None]  # (R, 1, Ny, Nz)
    ayz = (ay[:, None] * az[None, :])[None, None]  # (1, 1, Ny, Nz)
    ridx = torch.arange(n_r, device=src_r.device)
    for i0 in range(0, nb[0], x_chunk):
        sl = slice(i0, min(i0 + x_chunk, nb[0]))
        dist = torch.sqrt(ox[:, sl, None, None] ** 2 + ryz)  # (R, nx, Ny, Nz)
        tau = dist * (fs / c)
        keep = tau < limit
        if not bool(keep.any()):
            continue
        amp = (ax[sl][None, :, None, None] * ayz) / (4.0 * math.pi * dist)
        r_of = ridx[:, None, None, None].expand_as(tau)
        yield r_of[keep], tau[keep], amp[keep]


def _accumulate_chebyshev(grid: torch.Tensor, r, tau, amp, degree: int, width: int) -> None:
    """Add each arrival to the (R, degree + 1, width) grid: a·T_p(2φ − 1) in row p at its integer delay."""
    n0 = torch.floor(tau)
    x = 2.0 * (tau - n0) - 1.0
    base = (r * (degree + 1)) * width + n0.to(torch.int64)
    flat = grid.view(-1)
    t_prev, t_cur = torch.ones_like(x), x
    flat.index_add_(0, base, amp)
    for p in range(1, degree + 1):
        flat.index_add_(0, base + p * width, amp * t_cur)
        t_prev, t_cur = t_cur, 2.0 * x * t_cur - t_prev


def _accumulate_exact(out: torch.Tensor, r, tau, amp, half: float, k_half: int, chunk: int = 16384) -> None:
    """Reference path: evaluate w·sinc at every tap of every arrival and scatter-add into (R, n) ``out``."""
    n = out.shape[1]
    k = torch.arange(-k_half, k_half + 1, device=out.device, dtype=torch.int64)
    flat = out.view(-1)
    for i in range(0, tau.numel(), chunk):
        t_i, a_i, r_i = tau[i : i + chunk], amp[i : i + chunk], r[i : i + chunk]
        t = torch.floor(t_i).to(torch.int64)[:, None] + k[None, :]
        val = a_i[:, None] * _windowed_sinc(t.to(torch.float64) - t_i[:, None], half)
        ok = (t >= 0) & (t < n)
        idx = (r_i[:, None] * n + t)[ok]
        flat.index_add_(0, idx, val[ok])


def _simulate_merlib(
    room_dim,
    beta,
    src,
    mics,
    nb_img,
    t_max,
    fs,
    t_diff=None,
    c=SPEED_OF_SOUND,
    generator=None,
    device=None,
    *,
    poly_degree: int | None = DEFAULT_POLY_DEGREE,
) -> torch.Tensor:
    """The ``"merlib"`` backend (see the module docstring). ``poly_degree=None`` evaluates every tap exactly."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    with _cpu_threads(dev):
        return _merlib_impl(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff, c, generator, dev, poly_degree)


def _merlib_impl(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff, c, generator, dev, poly_degree) -> torch.Tensor:
    room, b, src_np, mic_np, nb, t_max, fs, t_diff = _check_inputs(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff)
    f64 = torch.float64
    n_src, n_mic = src_np.shape[0], mic_np.shape[0]
    n_samples = rir_length(t_max, fs)
    n_ism = _even_ceil(t_diff * fs)
    half, k_half = _window_half(fs)

    # One row per (source, microphone) pair, source-major.
    src_r = torch.as_tensor(np.repeat(src_np, n_mic, axis=0), dtype=f64, device=dev)
    rcv_r = torch.as_tensor(np.tile(mic_np, (n_src, 1)), dtype=f64, device=dev)
    n_r = src_r.shape[0]
    beta_l = [float(x) for x in b]
    room_l = [float(x) for x in room]
    # Only images whose window reaches a sample before n_ism contribute to the ISM part.
    limit = n_ism + half
    x_chunk = max(1, int(2_000_000 // max(1, n_r * nb[1] * nb[2])))

    if poly_degree is None:
        h_ism = torch.zeros((n_r, n_ism), dtype=f64, device=dev)
        for r, tau, amp in _image_arrivals(room_l, beta_l, src_r, rcv_r, nb, fs, c, limit, x_chunk):
            _accumulate_exact(h_ism, r, tau, amp, half, k_half)
    else:
        degree = int(poly_degree)
        width = n_ism + k_half + 1  # integer delays 0 .. n_ism + K
        grid = torch.zeros((n_r, degree + 1, width), dtype=f64, device=dev)
        for r, tau, amp in _image_arrivals(room_l, beta_l, src_r, rcv_r, nb, fs, c, limit, x_chunk):
            _accumulate_chebyshev(grid, r, tau, amp, degree, width)
        filt = _chebyshev_filters(fs, degree, dev)  # (D + 1, 2K + 1), tap 0 is k = -K
        n_fft = 1 << int(math.ceil(math.log2(width + 2 * k_half)))
        spec = torch.einsum("rpf,pf->rf", torch.fft.rfft(grid, n=n_fft), torch.fft.rfft(filt, n=n_fft))
        h_ism = torch.fft.irfft(spec, n=n_fft)[:, k_half : k_half + n_ism]
        del grid

    if n_ism >= n_samples:
        h = h_ism[:, :n_samples]
    else:
        h = torch.cat([h_ism, _diffuse_tail(h_ism, room, b, src_r, rcv_r, n_samples, fs, c, generator, dev)], dim=1)
    return h.to(torch.float32).reshape(n_src, n_mic, n_samples)


def _diffuse_tail(h_ism, room, beta, src_r, rcv_r, n_samples, fs, c, generator, dev) -> torch.Tensor:
    """Samples n_ism .. n_samples-1: logistic noise under an envelope continuing the ISM's last-10-ms power and
    decaying 60 dB (power) in the Sabine T60 of ``beta`` (docs/room-acoustics.md §1.3)."""
    n_r, n_ism = h_ism.shape
    t60 = t60_from_beta(room, beta, c)
    decay = 0.0 if math.isinf(t60) else -math.log(1e6) / (t60 * fs)  # power decay per sample
    tau_dp = torch.linalg.vector_norm(src_r - rcv_r, dim=1) * (fs / c)  # (R,)
    w_sz = round(TAIL_MATCH_WINDOW_S * fs)
    w_start = torch.ceil(torch.clamp(tau_dp, min=float(n_ism - w_sz))).to(torch.int64)
    if bool((w_start >= n_ism).any()):
        raise ValueError(
            "the direct path arrives after t_diff, so the image-source part holds no energy to continue and the "
            "diffuse tail would be all zeros; increase t_diff or move the source closer"
        )
    energy = torch.cat([torch.zeros((n_r, 1), dtype=h_ism.dtype, device=dev), torch.cumsum(h_ism**2, dim=1)], dim=1)
    p_final = (energy[:, n_ism] - energy.gather(1, w_start[:, None])[:, 0]) / (n_ism - w_start).to(h_ism.dtype)
    w_center = w_start.to(h_ism.dtype) + (n_ism - w_start).to(h_ism.dtype) / 2.0
    amp0 = torch.sqrt(p_final / torch.exp(decay * (w_center - tau_dp)))  # sqrt(A)
    n = torch.arange(n_ism, n_samples, dtype=h_ism.dtype, device=dev)
    env = amp0[:, None] * torch.exp(0.5 * decay * (n[None, :] - tau_dp[:, None]))
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    u = 1.0 - torch.rand((n_r, n_samples - n_ism), generator=generator, dtype=torch.float64, device=gen_dev)  # (0, 1]
    logistic = (math.sqrt(3.0) / math.pi) * torch.log(u / (1.0 - u + 1e-6))  # unit variance
    return env * logistic.to(device=dev, dtype=h_ism.dtype)


# ----------------------------------------------------------------------------------------------------------------
# optional backends
# ----------------------------------------------------------------------------------------------------------------


def _simulate_gpurir(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff, c, generator, device) -> torch.Tensor:
    try:
        import gpuRIR  # noqa: PLC0415  (optional, CUDA-only, AGPL: only ever imported on request)
    except Exception as exc:  # ImportError, or its CUDA initialisation failing
        raise ImportError(
            "backend='gpurir' needs the gpuRIR package and a CUDA GPU (install it from "
            "https://github.com/DavidDiazGuerra/gpuRIR; it is not on PyPI). backend='merlib' implements the "
            f"same algorithm on CPU or GPU. Import failed with: {exc!r}"
        ) from exc
    room, b, src_np, mic_np, nb, t_max, fs, t_diff = _check_inputs(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff)
    if generator is not None:
        warnings.warn("gpuRIR seeds its diffuse tail itself (fixed seed 1234); `generator` is ignored", stacklevel=3)
    out = gpuRIR.simulateRIR(
        room.tolist(), b.tolist(), src_np, mic_np, nb, t_max, fs, Tdiff=t_diff, c=c
    )
    return torch.as_tensor(np.asarray(out, dtype=np.float32), device=device)


def pyroomacoustics_max_order(room_dim: Sequence[float], t: float, c: float = SPEED_OF_SOUND) -> int:
    """pyroomacoustics' ``inverse_sabine`` order rule: the smallest reflection order whose diamond of images
    contains the sphere of radius c·t (so every path up to ``t`` seconds is included)."""
    dims = [float(x) for x in room_dim]
    radii = [a * b / math.hypot(a, b) for a, b in ((dims[0], dims[1]), (dims[0], dims[2]), (dims[1], dims[2]))]
    return int(math.ceil(c * t / min(radii) - 1))


def _simulate_pyroomacoustics(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff, c, device) -> torch.Tensor:
    """Full specular image-source model of pyroomacoustics, aligned and scaled to merlib's conventions.

    - Walls get energy absorption 1 − β² (β positive: pyroomacoustics does not flip signs), no air absorption,
      no ray tracing, no randomised ISM; its default 10 Hz high-pass filter stays on.
    - The reflection order covers ``t_max`` (``pyroomacoustics_max_order``); ``nb_img`` and ``t_diff`` are
      ignored: there is no diffuse tail. Pure ISM decays slower than Sabine in flat rooms
      (docs/room-acoustics.md §2.2).
    - Its global delay (``frac_delay_length // 2`` = 40 samples) is removed and the response is divided by 4π,
      so the direct path peaks at round(d/c·fs) with amplitude ≈ 1/(4π·d), like the merlib backend; the
      result is cut or zero-padded to N = ceil(t_max·fs) rounded up to even.
    """
    try:
        import pyroomacoustics as pra  # noqa: PLC0415  (only the cross-check backend needs it)
    except ImportError as exc:
        raise ImportError(
            "backend='pyroomacoustics' needs pyroomacoustics (pip install pyroomacoustics==0.10.1); "
            "the default backend='merlib' does not"
        ) from exc
    room, b, src_np, mic_np, nb, t_max, fs, t_diff = _check_inputs(room_dim, beta, src, mics, nb_img, t_max, fs, t_diff)
    if abs(c - float(pra.constants.get("c"))) > 1e-9:
        raise ValueError(f"backend='pyroomacoustics' uses its global speed of sound {pra.constants.get('c')} m/s, not c={c}")
    if abs(fs - round(fs)) > 0:
        raise ValueError(f"backend='pyroomacoustics' needs an integer fs, got {fs}")
    e_abs = np.clip(1.0 - b**2, 0.0, 1.0)
    names = ["west", "east", "south", "north", "floor", "ceiling"]  # x0, x1, y0, y1, z0, z1
    materials = {nm: pra.Material(float(e)) for nm, e in zip(names, e_abs)}
    pra_room = pra.ShoeBox(
        room.tolist(),
        fs=int(round(fs)),
        materials=materials,
        max_order=pyroomacoustics_max_order(room, t_max, c),
        air_absorption=False,
        ray_tracing=False,
        use_rand_ism=False,
    )
    for s in src_np:
        pra_room.add_source(s.tolist())
    pra_room.add_microphone_array(mic_np.T.copy())
    pra_room.compute_rir()
    delay = int(pra.constants.get("frac_delay_length")) // 2
    n_samples = rir_length(t_max, fs)
    out = np.zeros((src_np.shape[0], mic_np.shape[0], n_samples), dtype=np.float64)
    for m in range(mic_np.shape[0]):
        for s in range(src_np.shape[0]):
            h = np.asarray(pra_room.rir[m][s], dtype=np.float64)[delay : delay + n_samples]
            out[s, m, : h.size] = h / (4.0 * math.pi)
    return torch.as_tensor(out.astype(np.float32), device=device)
