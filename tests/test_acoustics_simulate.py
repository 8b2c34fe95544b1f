"""merlib's image-source + diffuse-tail simulator: shapes, direct path, TDOA, determinism
(docs/room-acoustics.md §8)."""

import math
import sys

import numpy as np
import pytest
import torch

from merlib.acoustics import (
    MOBILE_GEOMETRY,
    att2t,
    beta_from_t60,
    place_array,
    rir_length,
    sample_paper_scene,
    simulate_rir,
    simulate_scene,
    t2n,
)
from merlib.acoustics.simulate import _simulate_merlib

FS = 16000
C = 343.0
ROOM = [6.0, 4.0, 2.9]
T60 = 0.5
SRC = np.array([[2.0, 1.5, 1.75]])
MICS = place_array(MOBILE_GEOMETRY, [3.0, 2.2, 1.6], yaw=0.3)


def _paper_rir(t_max=T60, t_diff=None, seed=0, src=SRC, mics=MICS, **kw):
    beta = beta_from_t60(ROOM, T60)
    t_diff = att2t(15, T60) if t_diff is None else t_diff
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    return simulate_rir(ROOM, beta, src, mics, t2n(t_diff, ROOM), t_max, FS, t_diff=t_diff, generator=gen, **kw)


def _n_ism(t_diff=att2t(15, T60)):
    n = math.ceil(t_diff * FS)
    return n + n % 2


def test_shape_length_dtype():
    src = np.vstack([SRC, [[4.5, 3.0, 1.2]]])
    for t_max in (0.5, 0.4371, 0.33):
        h = _paper_rir(t_max=t_max, t_diff=min(0.125, t_max), src=src)
        n = math.ceil(t_max * FS)
        assert h.shape == (2, 3, n + n % 2) == (2, 3, rir_length(t_max, FS))
        assert h.dtype == torch.float32
        assert torch.isfinite(h).all()


def test_direct_path_index_and_amplitude():
    h = _paper_rir()[0].numpy()
    d = np.linalg.norm(MICS - SRC[0], axis=1)
    tau = d / C * FS
    peaks = np.abs(h).argmax(axis=1)
    assert np.all(np.abs(peaks - np.round(tau)) <= 1)
    # The sampled peak of a fractionally delayed Hann-windowed sinc is a·w(δ)·sinc(δ), δ = peak − τ.
    delta = peaks - tau
    expected = (1 / (4 * np.pi * d)) * np.sinc(delta) * 0.5 * (1 + np.cos(np.pi * delta / 64))
    np.testing.assert_allclose(np.abs(h[np.arange(3), peaks]), expected, rtol=0.15)


def test_direct_path_amplitude_on_integer_delay():
    d = 32 * C / FS  # exactly 32 samples: the peak is the full 1/(4πd)
    src = np.array([[2.0, 2.0, 1.5]])
    mic = np.array([[2.0 + d, 2.0, 1.5]])
    h = _paper_rir(src=src, mics=mic)[0, 0].numpy()
    assert int(np.abs(h).argmax()) == 32
    assert abs(h[32]) == pytest.approx(1 / (4 * np.pi * d), rel=0.15)
    assert h[32] > 0  # the direct path is not reflected, so it keeps its sign


def test_tdoa_matches_geometry():
    rng = np.random.default_rng(3)
    for _ in range(3):
        scene = sample_paper_scene(rng)
        h = simulate_scene(scene, generator=torch.Generator().manual_seed(0)).numpy()
        n = np.abs(h).argmax(axis=1)
        tau = np.linalg.norm(scene.mics - scene.src, axis=1) / C * FS
        for i in range(3):
            for j in range(i + 1, 3):
                assert abs((n[i] - n[j]) - (tau[i] - tau[j])) <= 1


def test_first_reflection_sign_and_delay():
    """A single wall (x = 0 reflecting, all else absorbing) gives exactly one image at −x_src, sign-flipped."""
    beta = [0.9, 0, 0, 0, 0, 0]
    src, mic = np.array([[1.0, 2.0, 1.5]]), np.array([[3.0, 2.0, 1.5]])
    h = simulate_rir(ROOM, beta, src, mic, [5, 5, 5], 0.05, FS).numpy()[0, 0]
    d_img = 4.0  # from (−1, 2, 1.5) to (3, 2, 1.5)
    n_img = round(d_img / C * FS)
    seg = h[n_img - 3 : n_img + 4]
    assert seg[np.abs(seg).argmax()] < 0
    assert abs(seg).max() == pytest.approx(0.9 / (4 * np.pi * d_img) * np.sinc(n_img - d_img / C * FS), rel=0.05)


def test_same_seed_identical_different_seed_changes_only_tail():
    a = _paper_rir(seed=5)
    b = _paper_rir(seed=5)
    c = _paper_rir(seed=6)
    assert torch.equal(a, b)
    n_ism = _n_ism()
    assert torch.equal(a[..., :n_ism], c[..., :n_ism])
    assert not torch.equal(a[..., n_ism:], c[..., n_ism:])
    # independent tails per microphone: no two channels share their noise
    tail = a[0, :, n_ism:].double()
    corr = np.corrcoef(tail.numpy())
    assert np.all(np.abs(corr[np.triu_indices(3, 1)]) < 0.2)


def test_pure_ism_draws_no_random_numbers():
    gen = torch.Generator().manual_seed(1)
    state, global_state = gen.get_state(), torch.get_rng_state()
    h = simulate_rir(ROOM, beta_from_t60(ROOM, T60), SRC, MICS, [5, 5, 5], 0.05, FS, t_diff=None, generator=gen)
    assert torch.equal(gen.get_state(), state)
    assert torch.equal(torch.get_rng_state(), global_state)
    assert h.shape[-1] == 800


def test_tail_continues_ism_power_and_decays_at_t60():
    h = _paper_rir(seed=0)[0].double().numpy()
    n_ism = _n_ism()
    before = np.mean(h[:, n_ism - 160 : n_ism] ** 2)
    after = np.mean(h[:, n_ism : n_ism + 160] ** 2)
    assert 0.5 < after / before < 2.0
    late = np.mean(h[:, -800:] ** 2)
    early = np.mean(h[:, n_ism : n_ism + 800] ** 2)
    expected_db = -60.0 * ((h.shape[1] - 400) - (n_ism + 400)) / (T60 * FS)
    assert 10 * np.log10(late / early) == pytest.approx(expected_db, abs=2.0)


def test_chebyshev_expansion_matches_exact_windowed_sinc():
    beta = beta_from_t60(ROOM, T60)
    t_diff = att2t(15, T60)
    args = (ROOM, beta, SRC, MICS, t2n(t_diff, ROOM), 0.2, FS, t_diff)
    fast = _simulate_merlib(*args, generator=torch.Generator().manual_seed(0))
    exact = _simulate_merlib(*args, generator=torch.Generator().manual_seed(0), poly_degree=None)
    n_ism = _n_ism(t_diff)
    err = (fast[..., :n_ism] - exact[..., :n_ism]).abs().max() / exact.abs().max()
    assert err < 1e-6  # float32 rounding level; gpuRIR parity only asks for 1e-3
    assert torch.equal(fast[..., n_ism:] != 0, exact[..., n_ism:] != 0)
    coarse = _simulate_merlib(*args, generator=torch.Generator().manual_seed(0), poly_degree=4)
    assert (coarse[..., :n_ism] - exact[..., :n_ism]).abs().max() / exact.abs().max() < 1e-2


def test_invalid_inputs_raise():
    beta = beta_from_t60(ROOM, T60)
    with pytest.raises(ValueError, match="inside the room"):
        simulate_rir(ROOM, beta, [[7.0, 1.0, 1.0]], MICS, [3, 3, 3], 0.1, FS)
    with pytest.raises(ValueError, match="t_diff"):
        simulate_rir(ROOM, beta, SRC, MICS, [3, 3, 3], 0.1, FS, t_diff=0.2)
    with pytest.raises(ValueError, match="backend"):
        simulate_rir(ROOM, beta, SRC, MICS, [3, 3, 3], 0.1, FS, backend="nope")
    with pytest.raises(ValueError, match="direct path arrives after t_diff"):
        simulate_rir([20, 20, 3], [0.9] * 6, [[1, 1, 1.5]], [[18, 18, 1.5]], [3, 3, 3], 0.2, FS, t_diff=0.01)


def test_merlib_backend_never_needs_pyroomacoustics(monkeypatch):
    """With ``import pyroomacoustics`` made to fail, the default backend still works end to end."""
    monkeypatch.setitem(sys.modules, "pyroomacoustics", None)  # any import of it now raises ImportError
    with pytest.raises(ImportError):
        import pyroomacoustics  # noqa: F401
    scene = sample_paper_scene(np.random.default_rng(0))
    h = simulate_scene(scene, generator=torch.Generator().manual_seed(0))
    assert h.shape == (3, rir_length(scene.t_max, scene.fs)) and torch.isfinite(h).all()
    with pytest.raises(ImportError, match="pyroomacoustics"):
        simulate_scene(scene, backend="pyroomacoustics")


def test_gpurir_backend_error_is_clear_without_gpurir(monkeypatch):
    monkeypatch.setitem(sys.modules, "gpuRIR", None)
    with pytest.raises(ImportError, match="gpuRIR"):
        _paper_rir(backend="gpurir")


def test_cpu_thread_setting_is_restored():
    before = torch.get_num_threads()
    _paper_rir(t_max=0.1, t_diff=0.05)
    assert torch.get_num_threads() == before
