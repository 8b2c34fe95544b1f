"""Cross-checks between backends: pyroomacoustics (independent ISM), CUDA vs CPU, and gpuRIR when present."""

import numpy as np
import pyroomacoustics as pra  # a pinned dependency: imported, so a broken install fails instead of skipping
import pytest
import torch

from merlib.acoustics import (
    att2t,
    beta_from_t60,
    measure_t60,
    pyroomacoustics_max_order,
    rir_length,
    sample_paper_scene,
    simulate_rir,
    simulate_scene,
    t2n,
)

FS = 16000
C = 343.0


def _both(scene, t_max=0.1):
    args = (scene.room_dim, scene.beta, scene.src[None], scene.mics, scene.nb_img, t_max, FS)
    ours = simulate_rir(*args, t_diff=min(scene.t_diff, t_max), generator=torch.Generator().manual_seed(0))[0]
    theirs = simulate_rir(*args, backend="pyroomacoustics")[0]
    return ours.numpy(), theirs.numpy()


def test_max_order_rule_matches_inverse_sabine():
    for room, t60 in (([6, 4, 2.9], 0.5), ([8, 8, 2.9], 0.85)):
        assert pyroomacoustics_max_order(room, t60) == pra.inverse_sabine(t60, room)[1]


def test_raw_pyroomacoustics_has_40_sample_delay():
    room = pra.ShoeBox([6, 4, 2.9], fs=FS, materials=pra.Material(0.5), max_order=0)
    room.add_source([2.0, 1.5, 1.75])
    room.add_microphone_array(np.array([[3.0], [2.2], [1.6]]))
    room.compute_rir()
    d = np.linalg.norm(np.array([3.0, 2.2, 1.6]) - [2.0, 1.5, 1.75])
    assert int(np.abs(room.rir[0][0]).argmax()) == round(d / C * FS) + 40


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_direct_path_delays_and_tdoas_agree_with_pyroomacoustics(seed):
    scene = sample_paper_scene(np.random.default_rng(seed))
    ours, theirs = _both(scene)
    assert ours.shape == theirs.shape == (3, rir_length(0.1, FS))
    n_ours, n_theirs = np.abs(ours).argmax(axis=1), np.abs(theirs).argmax(axis=1)
    assert np.all(np.abs(n_ours - n_theirs) <= 1)
    for i in range(3):
        for j in range(i + 1, 3):
            assert abs((n_ours[i] - n_ours[j]) - (n_theirs[i] - n_theirs[j])) <= 1
    # same scale convention after the backend's 1/(4π) and alignment: direct-path energy within ±0.5 dB
    w = 40
    e_ours = [np.sum(ours[m, max(0, n - w) : n + w] ** 2) for m, n in enumerate(n_ours)]
    e_theirs = [np.sum(theirs[m, max(0, n - w) : n + w] ** 2) for m, n in enumerate(n_theirs)]
    assert np.all(np.abs(10 * np.log10(np.divide(e_ours, e_theirs))) < 0.5)  # observed < 0.1 dB


@pytest.mark.slow
def test_pure_ism_decay_overshoots_in_a_flat_room():
    """pyroomacoustics' full ISM decays slower than Sabine (docs/room-acoustics.md §2.2): not a T60 oracle, a
    sanity check."""
    room, t60 = [6.0, 4.0, 2.9], 0.5
    beta = beta_from_t60(room, t60)
    mics = np.array([[3.0, 2.2, 1.6], [3.045, 2.2, 1.6]])
    h = simulate_rir(room, beta, [[2.0, 1.5, 1.75]], mics, t2n(0.125, room), t60, FS, backend="pyroomacoustics")[0]
    ratio = measure_t60(h.numpy(), FS) / t60
    assert np.all((0.95 <= ratio) & (ratio <= 1.5))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    """Needs a CUDA device: the merlib backend on CUDA must reproduce the CPU result (same seed)."""
    if not torch.cuda.is_available():
        pytest.fail("this test needs a CUDA device (none found); deselect it with -m 'not gpu'")
    rng = np.random.default_rng(0)
    for i in range(3):
        scene = sample_paper_scene(rng)
        cpu = simulate_scene(scene, generator=torch.Generator().manual_seed(i))
        gpu = simulate_scene(scene, generator=torch.Generator().manual_seed(i), device="cuda")
        assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
        err = (gpu.cpu() - cpu).abs().max() / cpu.abs().max()
        assert err < 1e-4, f"scene {i}: max |cuda − cpu| = {err:.2e} of the peak"
        gen = torch.Generator(device="cuda").manual_seed(i)  # a CUDA generator works too
        assert simulate_scene(scene, generator=gen, device="cuda").shape == cpu.shape


@pytest.mark.gpu
def test_gpurir_parity():
    """Needs CUDA and gpuRIR: the image-source parts agree within 1e-3 of the peak and T30 within 5 %."""
    if not torch.cuda.is_available():
        pytest.fail("this test needs a CUDA device (none found); deselect it with -m 'not gpu'")
    pytest.importorskip("gpuRIR", reason="gpuRIR is optional (CUDA-only, installed from GitHub)")
    room, t60 = [6.0, 4.0, 2.9], 0.5
    beta = beta_from_t60(room, t60)
    t_diff = att2t(15, t60)
    args = (room, beta, [[2.0, 1.5, 1.75]], [[3.0, 2.2, 1.6], [3.045, 2.2, 1.6]], t2n(t_diff, room), t60, FS)
    ours = simulate_rir(*args, t_diff=t_diff, generator=torch.Generator().manual_seed(0)).numpy()
    theirs = simulate_rir(*args, t_diff=t_diff, backend="gpurir").cpu().numpy()
    n_ism = int(np.ceil(t_diff * FS))
    n_ism += n_ism % 2
    assert np.abs(ours[..., :n_ism] - theirs[..., :n_ism]).max() <= 1e-3 * np.abs(ours).max()
    np.testing.assert_allclose(measure_t60(theirs[0], FS), measure_t60(ours[0], FS), rtol=0.05)
