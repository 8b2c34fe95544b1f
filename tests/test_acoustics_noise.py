"""Spatially-white AR(1) noise, exact SNR mixing and reverberation (docs/room-acoustics.md §6, §8)."""

import numpy as np
import pytest
import torch
from scipy.signal import fftconvolve, welch

from merlib.acoustics import ar1_noise, mix_at_snr, reverberate

N = 64_000


@pytest.mark.parametrize("a", [0.5, 0.9])
def test_ar1_statistics(a):
    x = ar1_noise(3, N, a=a, rng=np.random.default_rng(0))
    assert x.shape == (3, N)
    assert np.all(np.abs(x.var(axis=1) - 1.0) <= 0.1)
    lag1 = np.array([np.corrcoef(ch[:-1], ch[1:])[0, 1] for ch in x])
    assert np.all(np.abs(lag1 - a) <= 4 * np.sqrt((1 - a**2) / N))
    rho = np.corrcoef(x)[np.triu_indices(3, 1)]
    assert np.all(np.abs(rho) < 4 * np.sqrt((1 + a**2) / ((1 - a**2) * N)))


@pytest.mark.parametrize("a", [0.5, 0.9])
def test_ar1_spectral_tilt(a):
    x = ar1_noise(3, N, a=a, rng=np.random.default_rng(1))
    f, p = welch(x, nperseg=1024, detrend=False, axis=-1)
    psd = p.mean(axis=0)
    w = 2 * np.pi * f  # cycles/sample, fs = 1
    theory = (1 - a**2) / np.abs(1 - a * np.exp(-1j * w)) ** 2
    measured = 10 * np.log10(psd[:3].mean() / psd[-3:].mean())
    expected = 10 * np.log10(theory[:3].mean() / theory[-3:].mean())
    assert measured == pytest.approx(expected, abs=1.0)


def test_ar1_is_seeded_and_validates():
    assert np.array_equal(ar1_noise(2, 100, rng=np.random.default_rng(3)), ar1_noise(2, 100, rng=np.random.default_rng(3)))
    with pytest.raises(ValueError):
        ar1_noise(2, 100, a=1.0)


def _snr(speech, mixture):
    noise = mixture - speech
    return 10 * np.log10(np.mean(speech**2, axis=-1) / np.mean(noise**2, axis=-1))


def test_mix_at_snr_per_channel_is_exact():
    rng = np.random.default_rng(0)
    speech = rng.standard_normal((3, 8000)) * np.array([[1.0], [0.9], [1.1]])
    noise = ar1_noise(3, 8000, rng=rng)
    out = mix_at_snr(speech, noise, 20.0, mode="per_channel")
    np.testing.assert_allclose(_snr(speech, out), 20.0, atol=1e-6)


def test_mix_at_snr_mean_is_exact_on_pooled_power_and_same_noise_gain():
    rng = np.random.default_rng(1)
    speech = rng.standard_normal((3, 8000)) * np.array([[1.0], [0.9], [1.1]])
    noise = ar1_noise(3, 8000, rng=rng)
    out = mix_at_snr(speech, noise, 20.0)
    added = out - speech
    pooled = 10 * np.log10(np.mean(speech**2) / np.mean(added**2))
    assert pooled == pytest.approx(20.0, abs=1e-6)
    gains = np.sqrt(np.mean(added**2, axis=1) / np.mean(noise**2, axis=1))
    np.testing.assert_allclose(gains, gains[0], rtol=1e-9)  # one gain: spatially white noise stays white
    ref = mix_at_snr(speech, noise, 10.0, mode="ref")
    assert _snr(speech, ref)[0] == pytest.approx(10.0, abs=1e-6)
    with pytest.raises(ValueError):
        mix_at_snr(speech, noise, 20.0, mode="loud")
    with pytest.raises(ValueError):
        mix_at_snr(speech, np.zeros_like(noise), 20.0)


def test_active_speech_power_ignores_silence():
    rng = np.random.default_rng(2)
    speech = np.zeros((1, 16000))
    speech[:, 3840:8000] = rng.standard_normal(4160)  # whole 320-sample frames
    noise = ar1_noise(1, 16000, rng=rng)
    out = mix_at_snr(speech, noise, 20.0, speech_power="active")
    active_power = np.mean(speech[:, 3840:8000] ** 2)
    assert 10 * np.log10(active_power / np.mean((out - speech) ** 2)) == pytest.approx(20.0, abs=1e-6)


def test_reverberate_alignment_length_and_snr():
    rng = np.random.default_rng(0)
    clean = rng.standard_normal(4000).astype(np.float32)
    rirs = np.zeros((3, 600))
    rirs[0, 0] = 1.0
    rirs[1, 7] = 0.5
    rirs[2, 20:] = 0.01 * rng.standard_normal(580)
    out = reverberate(clean, rirs, snr_db=None)
    assert out.shape == (3, 4000) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], clean, atol=1e-6)  # starts at sample 0 of the convolution
    np.testing.assert_allclose(out[1, 7:], 0.5 * clean[:-7], atol=1e-6)  # delay kept
    assert np.all(np.abs(out[1, :7]) < 1e-6)
    np.testing.assert_allclose(out[2], fftconvolve(clean, rirs[2])[:4000], atol=1e-5)  # tail past the end cut
    noisy = reverberate(clean, torch.as_tensor(rirs), snr_db=20.0, rng=np.random.default_rng(1))
    clean_rev = out.astype(np.float64)
    pooled = 10 * np.log10(np.mean(clean_rev**2) / np.mean((noisy - clean_rev) ** 2))
    assert pooled == pytest.approx(20.0, abs=1e-3)  # float32 output
    again = reverberate(clean, rirs, snr_db=20.0, rng=np.random.default_rng(1))
    assert np.array_equal(noisy, again)
    with pytest.raises(ValueError):
        reverberate(np.zeros((2, 10)), rirs)
