"""T20/T30 and DRR: the estimator on synthetic decays, and simulated paper scenes against theory
(docs/room-acoustics.md §8)."""

import numpy as np
import pyroomacoustics as pra  # a pinned dependency: imported, so a broken install fails instead of skipping
import pytest
import torch

from merlib.acoustics import (
    drr_db,
    energy_decay_curve,
    fit_decay,
    measure_t60,
    sample_paper_scene,
    simulate_scene,
    truncate_at_noise_floor,
)

FS = 16000


def _synthetic_decay(t60, rng, seconds=None):
    n = int((seconds or 1.5 * t60) * FS)
    return rng.standard_normal(n) * 10.0 ** (-3.0 * np.arange(n) / (t60 * FS))


@pytest.mark.parametrize("t60", [0.3, 0.5, 0.85, 1.2])
def test_estimator_on_exponential_noise(t60):
    h = _synthetic_decay(t60, np.random.default_rng(int(t60 * 100)))
    assert measure_t60(h, FS) / t60 == pytest.approx(1.0, abs=0.03)
    assert 0.96 <= measure_t60(h, FS, decay_db=20) / t60 <= 1.05


def test_estimator_agrees_with_pyroomacoustics():
    h = _synthetic_decay(0.6, np.random.default_rng(1))
    assert measure_t60(h, FS) == pytest.approx(pra.experimental.measure_rt60(h, FS, decay_db=30), rel=0.01)


def test_edc_and_fit_details():
    h = _synthetic_decay(0.5, np.random.default_rng(2))
    edc = energy_decay_curve(h)
    assert edc[0] == 0.0 and np.all(np.diff(edc[np.isfinite(edc)]) <= 1e-9)
    fit = fit_decay(h, FS)
    assert edc[fit.i0] <= -5 and edc[fit.i1 - 1] <= -35 < edc[fit.i1 - 2]
    assert fit.t60 == pytest.approx(-60 / fit.slope_db_per_s)
    assert np.isnan(measure_t60(h[:400], FS))  # too short to fall 35 dB
    batch = measure_t60(np.stack([h, h]), FS)
    assert batch.shape == (2,) and batch[0] == batch[1]


def test_noise_floor_truncation_restores_t30():
    rng = np.random.default_rng(4)
    h = _synthetic_decay(0.5, rng, seconds=1.5)
    noisy = h + 10 ** (-50 / 20) * rng.standard_normal(h.size)  # floor at −50 dB
    assert measure_t60(noisy, FS) > 1.1 * 0.5
    assert measure_t60(truncate_at_noise_floor(noisy, FS), FS) == pytest.approx(0.5, rel=0.1)


def test_drr_definition():
    h = np.zeros(4000)
    h[100] = 1.0
    h[200:] = 0.01  # 3800 samples of 1e-4 energy = 0.38
    assert drr_db(h, FS) == pytest.approx(10 * np.log10(1.0 / (3800 * 1e-4)))
    assert drr_db(np.stack([h, h]), FS).shape == (2,)


def _scene_stats(n_scenes, seed):
    rng = np.random.default_rng(seed)
    r30, r20, drr_err = [], [], []
    for i in range(n_scenes):
        scene = sample_paper_scene(rng)
        h = simulate_scene(scene, generator=torch.Generator().manual_seed(i)).numpy()
        r30.append(measure_t60(h, scene.fs) / scene.t60)
        r20.append(measure_t60(h, scene.fs, decay_db=20) / scene.t60)
        drr_err.append(drr_db(h, scene.fs) - scene.drr_theory_db)
    return np.concatenate(r30), np.concatenate(r20), np.concatenate(drr_err)


def test_t60_and_drr_per_rir_on_paper_scenes():
    r30, r20, drr_err = _scene_stats(5, seed=0)
    assert np.all((0.85 <= r30) & (r30 <= 1.15)), r30
    assert np.all((0.80 <= r20) & (r20 <= 1.30)), r20
    assert np.all(np.abs(drr_err) <= 3.5), drr_err


def test_mean_t30_over_20_scenes_within_5_percent():
    r30, r20, drr_err = _scene_stats(20, seed=1)
    assert abs(r30.reshape(20, 3).mean(axis=1).mean() - 1.0) <= 0.05
    assert np.all((0.85 <= r30) & (r30 <= 1.15)), r30
    assert np.all(np.abs(drr_err) <= 3.5), drr_err
