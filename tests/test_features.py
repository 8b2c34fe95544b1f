"""The log-mel front end, SpecAugment and the image fold (merlib.features) against independent computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from merlib.features import (
    LogMel,
    SpecAugment,
    dft_kernels,
    empty_filters,
    fit_length,
    hann_window,
    slaney_mel_filterbank,
    to_image,
)

GOLDEN = Path(__file__).parent / "data" / "golden_reference_outputs.npz"


def _clip(c: int = 3, n: int = 64000, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n) / 16000
    chirp = torch.sin(2 * torch.pi * (200 + 900 * t) * t)
    return (0.3 * chirp + 0.05 * torch.randn(2, c, n, generator=g)).float()


def test_filterbank_matches_torchaudio_slaney():
    import torchaudio

    ours = slaney_mel_filterbank(16000, 1024, 64, 50.0, 14000.0)
    with pytest.warns(UserWarning):  # torchaudio warns about the empty filters, as librosa would
        ref = torchaudio.functional.melscale_fbanks(513, 50.0, 14000.0, 64, 16000, norm="slaney", mel_scale="slaney")
    assert ours.shape == (513, 64)
    assert torch.allclose(ours, ref.float(), atol=1e-7)


def test_filterbank_at_32k_is_the_reference_audioset_bank():
    # The golden npz stores the 32 kHz bank the reference's AudioSet checkpoint carries (librosa-made).
    melw_32k = np.load(GOLDEN)["melW_32k"]
    ours = slaney_mel_filterbank(32000, 1024, 64, 50.0, 14000.0).numpy()
    np.testing.assert_allclose(ours, melw_32k, atol=1e-8)


def test_empty_filter_quirk_fmax_14k_vs_8k():
    assert empty_filters(slaney_mel_filterbank(fmax=14000.0)) == list(range(55, 64))
    assert empty_filters(slaney_mel_filterbank(fmax=8000.0)) == []
    # Empty bands give exactly 10·log10(1e-10) = -100 dB, whatever the input
    out = LogMel()(_clip(1))
    assert torch.all(out[..., 55:] == -100.0)
    assert torch.all(out[..., :55] > -100.0)
    assert empty_filters(LogMel(fmax=8000.0).melW) == []


def test_logmel_shapes_and_buffers():
    lm = LogMel()
    assert lm(_clip(3)).shape == (2, 3, 401, 64)
    assert lm(torch.zeros(64000)).shape == (401, 64)
    assert lm.num_frames() == 401
    assert "melW" in lm.state_dict() and "window" not in lm.state_dict()  # window is derived from n_fft
    assert {n for n, _ in lm.named_buffers()} == {"window", "melW"}
    assert not list(lm.parameters())
    assert torch.allclose(lm.window, torch.from_numpy(np.hanning(1025)[:-1]).float(), atol=1e-7)  # periodic


def test_logmel_matches_torchaudio_melspectrogram():
    import torchaudio

    x = _clip(3)
    with pytest.warns(UserWarning, match="all zero values"):  # the 9 empty filters
        mel_spec = torchaudio.transforms.MelSpectrogram(
            sample_rate=16000, n_fft=1024, win_length=1024, hop_length=160, f_min=50.0, f_max=14000.0, n_mels=64,
            window_fn=torch.hann_window, power=2.0, center=True, pad_mode="reflect", norm="slaney",
            mel_scale="slaney",
        )
    ref_mel = mel_spec(x)  # (B, C, mels, frames)
    ref = 10 * torch.log10(torch.clamp(ref_mel, min=1e-10)).transpose(-1, -2)
    ours = LogMel()(x)
    assert ours.shape == ref.shape == (2, 3, 401, 64)
    assert (ours - ref).abs().max() < 1e-3  # dB


def test_logmel_matches_torchlibrosa_style_conv_stft():
    """The reference's STFT is a conv1d with Hann-windowed DFT kernels over a reflect-padded signal."""
    x = _clip(1)[:, 0]
    real_k, imag_k = dft_kernels(1024)
    padded = F.pad(x[:, None, :], (512, 512), mode="reflect")
    real = F.conv1d(padded.double(), real_k.double(), stride=160)
    imag = F.conv1d(padded.double(), imag_k.double(), stride=160)
    power = (real**2 + imag**2).transpose(1, 2)  # (B, frames, bins)
    mel = power @ slaney_mel_filterbank().double()
    ref = 10 * torch.log10(torch.clamp(mel, min=1e-10))
    assert (LogMel()(x).double() - ref).abs().max() < 1e-3


def test_dft_kernels_are_windowed_dft_basis():
    real, imag = dft_kernels(16)
    w = hann_window(16).double()
    basis = torch.fft.rfft(torch.eye(16, dtype=torch.float64), dim=1).T  # (9, 16): e^{-2πikn/N}
    assert real.shape == (9, 1, 16)
    assert torch.allclose(real[:, 0].double(), basis.real * w, atol=1e-6)
    assert torch.allclose(imag[:, 0].double(), basis.imag * w, atol=1e-6)


def test_first_four_seconds_zero_padded_at_the_end():
    x = _clip(1, n=70000)
    assert torch.equal(fit_length(x, 64000), x[..., :64000])
    short = x[..., :50000]
    padded = fit_length(short, 64000)
    assert padded.shape[-1] == 64000 and torch.all(padded[..., 50000:] == 0)
    lm = LogMel()
    assert torch.allclose(lm(short), lm(torch.cat([short, torch.zeros(2, 1, 14000)], -1)))
    assert torch.allclose(lm(x), lm(x[..., :64000]))


def test_specaugment_shares_one_mask_across_mics_and_is_off_in_eval():
    x = torch.randn(4, 3, 401, 64) + 5.0  # no natural zeros
    aug = SpecAugment(generator=torch.Generator().manual_seed(0))
    aug.eval()
    assert torch.equal(aug(x), x)
    aug.train()
    y = aug(x)
    dropped = y == 0
    assert dropped.any()
    for m in (1, 2):
        assert torch.equal(dropped[:, 0], dropped[:, m])
    assert not torch.equal(dropped[0, 0], dropped[1, 0])  # masks differ between clips
    kept = ~dropped
    assert torch.equal(y[kept], x[kept])


def test_specaugment_stripe_widths_and_counts():
    aug = SpecAugment()
    mask = aug.make_mask(500, 401, 64, generator=torch.Generator().manual_seed(1))[:, 0]  # (B, T, F)
    time_rows = mask.all(dim=2)  # frames dropped entirely (time stripes)
    freq_cols = mask.all(dim=1)  # bins dropped entirely (frequency stripes)
    assert time_rows.sum(1).max() <= 4 * 63
    assert freq_cols.sum(1).max() <= 2 * 7
    # widths are randint(0, 64): a lone stripe can reach 63 frames but never 64
    runs = []
    for row in time_rows.int():
        edges = torch.diff(torch.cat([torch.zeros(1, dtype=torch.int32), row, torch.zeros(1, dtype=torch.int32)]))
        starts, ends = torch.nonzero(edges == 1).flatten(), torch.nonzero(edges == -1).flatten()
        runs += (ends - starts).tolist()
    assert max(runs) >= 50  # wide stripes do occur (overlapping stripes can merge, so no upper check here)
    assert freq_cols.any(1).float().mean() > 0.5


def test_specaugment_is_seedable():
    aug = SpecAugment().train()
    x = torch.ones(2, 3, 401, 64)
    a = aug(x, generator=torch.Generator().manual_seed(7))
    b = aug(x, generator=torch.Generator().manual_seed(7))
    c = aug(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_to_image_fold_layout():
    # 1024 frames (no stretch needed): value encodes (frame, mel)
    frames = torch.arange(1024).float()[:, None]
    mels = torch.arange(64).float()[None, :]
    x = (frames * 100 + mels)[None, None].repeat(2, 3, 1, 1)
    img = to_image(x)
    assert img.shape == (2, 3, 256, 256)
    for chunk in range(4):
        for mel in (0, 17, 63):
            for col in (0, 100, 255):
                assert img[1, 2, chunk * 64 + mel, col] == (chunk * 256 + col) * 100 + mel


def test_to_image_bicubic_stretch_keeps_the_ends():
    x = torch.randn(1, 1, 401, 64)
    img = to_image(x)
    stretched = F.interpolate(x, size=(1024, 64), mode="bicubic", align_corners=True)
    assert torch.allclose(img[0, 0, :64, 0], x[0, 0, 0], atol=1e-5)  # align_corners: first frame kept
    assert torch.allclose(img[0, 0, 192:, 255], x[0, 0, 400], atol=1e-5)  # last frame at the last column
    assert torch.equal(img[0, 0, 64:128, :], stretched[0, 0, 256:512].T)
    with pytest.raises(ValueError, match="frames do not fit"):
        to_image(torch.zeros(1, 1, 1025, 64))


def test_logmel_stays_float32_under_autocast():
    x = _clip(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = LogMel()(x)
    assert out.dtype == torch.float32
    assert torch.equal(out, LogMel()(x))
