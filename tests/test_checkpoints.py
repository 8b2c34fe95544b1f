"""Loading and exporting reference checkpoints (merlib.models.checkpoints), and the golden check.

The golden check fills a reference-layout state dict by the recipe of ``docs/reference-model.md`` §3
(:func:`merlib.models.checkpoints.golden_fill`), loads it, and compares the outputs with those the
authors' model computed for the same weights and inputs (``tests/data/golden_reference_outputs.npz``).
"""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from merlib.models.checkpoints import (
    LoadReport,
    ReferenceLayout,
    export_reference_state_dict,
    golden_fill,
    golden_waveforms,
    load_reference_checkpoint,
    read_key_table,
    read_state_dict,
)
from merlib.models.htsat import HTSAT, HTSATConfig

DATA = Path(__file__).parent / "data"
GOLDEN = np.load(DATA / "golden_reference_outputs.npz")
KEYS = read_key_table(DATA / "mmer_state_dict_keys.tsv")
AUDIO_KEYS = {k: s for k, s in KEYS.items() if not k.startswith(("video_encoder.", "classifier."))}


def _rel(a: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.linalg.norm(a.detach().numpy() - ref) / np.linalg.norm(ref))


@pytest.fixture(scope="module")
def golden_sum_c3():
    """A paper-size Sum-PE model loaded from the golden fill, with the fill itself and the report."""
    model = HTSAT(num_mics=3, mode="sum_pe", num_classes=8)
    state = golden_fill(model, GOLDEN["melW_32k"], KEYS)
    report = load_reference_checkpoint(model, {"state_dict": {"sed_model." + k: v for k, v in state.items()}})
    return model.eval(), state, report


@pytest.mark.parametrize(
    "config, mics, mode",
    [("audio_avg_mel_c1", 1, "avg_mel"), ("audio_avg_mel_c3", 3, "avg_mel"), ("audio_sum_c3", 3, "sum_pe")],
)
def test_golden_outputs_of_the_reference(config: str, mics: int, mode: str, golden_sum_c3):
    if config == "audio_sum_c3":
        model, _, report = golden_sum_c3
    else:
        model = HTSAT(num_mics=mics, mode=mode, num_classes=8)
        report = load_reference_checkpoint(model, golden_fill(model, GOLDEN["melW_32k"], KEYS))
        model.eval()
    assert report.missing == []
    with torch.no_grad():
        out = model(golden_waveforms(mics))
    assert _rel(out.logits, GOLDEN[f"{config}_logits"]) < 1e-4
    assert _rel(out.embedding, GOLDEN[f"{config}_embedding"]) < 1e-4


def test_export_has_the_reference_audio_keys_and_shapes(golden_sum_c3):
    model, _, _ = golden_sum_c3
    exported = export_reference_state_dict(model)
    assert all(k.startswith("sed_model.") for k in exported)
    shapes = {k[len("sed_model.") :]: tuple(v.shape) for k, v in exported.items()}
    assert shapes == AUDIO_KEYS


def test_report_of_the_golden_load(golden_sum_c3):
    model, state, report = golden_sum_c3
    groups = report.skipped_by_reason()
    assert sorted(k for k, r in report.skipped.items() if r.startswith("STFT")) == [
        "spectrogram_extractor.stft.conv_imag.weight",
        "spectrogram_extractor.stft.conv_real.weight",
    ]
    derived = [k for k in report.skipped if k.endswith(("relative_position_index", "attn_mask"))]
    assert len(derived) == 12 + 5  # 12 blocks, 5 of them shifted with a mask below stage 4
    assert len(report.loaded) + len(report.skipped) == len(state) and len(groups) == 2
    assert "logmel.melW" in report.loaded and "bn0.running_mean" in report.loaded
    assert torch.equal(model.logmel.melW, torch.from_numpy(GOLDEN["melW_32k"]))
    assert torch.equal(model.bn0.running_var, state["bn0.running_var"])
    assert "loaded 181 entries" in str(report)


def test_round_trip_export_equals_loaded_values(golden_sum_c3):
    model, state, _ = golden_sum_c3
    exported = {k[len("sed_model.") :]: v for k, v in export_reference_state_dict(model).items()}
    assert set(exported) == set(state)
    for key, value in state.items():
        if key.startswith("spectrogram_extractor."):
            assert torch.allclose(exported[key], value, atol=1e-6), key  # regenerated, same kernels
        else:
            assert exported[key].dtype == value.dtype and torch.equal(exported[key], value), key
    # and an exported file loads back into a fresh model
    fresh = HTSAT(num_mics=3, mode="sum_pe", num_classes=8)
    assert load_reference_checkpoint(fresh, export_reference_state_dict(model)).missing == []
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k


def test_lightning_ckpt_with_527_class_head(tmp_path: Path):
    quick = HTSATConfig.quick()
    audioset = HTSAT(num_mics=1, num_classes=527, config=quick)
    ckpt = tmp_path / "HTSAT_AudioSet_Saved_1.ckpt"
    torch.save(
        {"epoch": 3, "global_step": 1200, "pytorch-lightning_version": "1.5.9",
         "state_dict": export_reference_state_dict(audioset)},
        ckpt,
    )
    model = HTSAT(num_mics=3, mode="sum_pe", num_classes=8, config=quick)
    head_before = model.tscam_conv.weight.clone()
    report = load_reference_checkpoint(model, ckpt)
    assert isinstance(report, LoadReport) and report.source == str(ckpt)
    head = {"tscam_conv.weight", "tscam_conv.bias", "head.weight", "head.bias"}
    assert {k for k, r in report.skipped.items() if r.startswith("class head")} == head
    assert report.skipped["tscam_conv.weight"] == "class head: the checkpoint has 527 classes, the model 8"
    assert len(report.skipped_by_reason()) == 3  # STFT kernels, derived buffers, the class head
    assert set(report.missing) == head
    assert torch.equal(model.tscam_conv.weight, head_before)
    assert torch.equal(model.layers[2].blocks[0].attn.qkv.weight, audioset.layers[2].blocks[0].attn.qkv.weight)
    assert torch.equal(model.patch_embed.proj.weight, audioset.patch_embed.proj.weight)


def test_shape_mismatch_names_the_key_and_both_shapes():
    small = HTSAT(config=HTSATConfig.quick())
    other = HTSAT(config=HTSATConfig.quick(embed_dim=32))
    with pytest.raises(ValueError, match=r"'patch_embed\.proj\.weight' has shape \(24, 1, 4, 4\).*\(32, 1, 4, 4\)"):
        load_reference_checkpoint(other, export_reference_state_dict(small))


def test_class_head_of_another_width_is_an_error_not_a_skip():
    state = export_reference_state_dict(HTSAT(config=HTSATConfig.quick()))
    state["sed_model.tscam_conv.weight"] = torch.zeros(8, 96, 2, 3)  # 8 classes, but another trunk width
    with pytest.raises(ValueError, match=r"'tscam_conv\.weight' has shape \(8, 96, 2, 3\)"):
        load_reference_checkpoint(HTSAT(config=HTSATConfig.quick()), state)


def test_filterbank_checkpoint_or_model():
    src = HTSAT(config=HTSATConfig.quick())
    src.logmel.melW.mul_(2.0)
    state = export_reference_state_dict(src)
    kept = HTSAT(config=HTSATConfig.quick())
    ours = kept.logmel.melW.clone()
    report = load_reference_checkpoint(kept, state, filterbank="model")
    assert torch.equal(kept.logmel.melW, ours) and "logmel_extractor.melW" in report.skipped
    assert "logmel.melW" not in report.missing
    loaded = HTSAT(config=HTSATConfig.quick())
    load_reference_checkpoint(loaded, state)
    assert torch.equal(loaded.logmel.melW, src.logmel.melW)
    with pytest.raises(ValueError, match="filterbank"):
        load_reference_checkpoint(loaded, state, filterbank="32k")


def test_accepts_bare_dicts_merlib_names_and_foreign_keys():
    src = HTSAT(config=HTSATConfig.quick())
    target = HTSAT(config=HTSATConfig.quick())
    report = load_reference_checkpoint(target, src.state_dict())  # merlib's own names, no prefix
    assert report.missing == [] and "logmel.melW" in report.loaded
    assert torch.equal(target.norm.weight, src.norm.weight)
    # a multimodal checkpoint's video and fusion keys are reported, not silently dropped
    state = {k[len("sed_model.") :]: v for k, v in export_reference_state_dict(src).items()}
    state["video_encoder.model.stem.0.weight"] = torch.zeros(45, 3, 1, 7, 7)
    state["classifier.linear1.weight"] = torch.zeros(4, 4)
    report = load_reference_checkpoint(HTSAT(config=HTSATConfig.quick()), state)
    assert report.skipped["video_encoder.model.stem.0.weight"] == "not part of HTSAT"
    assert report.skipped["classifier.linear1.weight"] == "not part of HTSAT"


def test_checked_entries_must_match():
    src = HTSAT(config=HTSATConfig.quick(depths=(2, 1, 1, 1)))
    state = export_reference_state_dict(src)
    bad = dict(state)
    bad["sed_model.spectrogram_extractor.stft.conv_real.weight"] = state[
        "sed_model.spectrogram_extractor.stft.conv_real.weight"] * 1.01
    with pytest.raises(ValueError, match="conv_real.weight.*Hann-windowed DFT"):
        load_reference_checkpoint(HTSAT(config=HTSATConfig.quick(depths=(2, 1, 1, 1))), bad)
    bad = dict(state)
    bad["sed_model.layers.0.blocks.1.attn_mask"] = torch.zeros(64, 64, 64)
    with pytest.raises(ValueError, match="attn_mask"):
        load_reference_checkpoint(HTSAT(config=HTSATConfig.quick(depths=(2, 1, 1, 1))), bad)


def test_untrusted_pickles_need_trusted(tmp_path: Path):
    path = tmp_path / "l.ckpt"  # Lightning 1.x files may pickle hyper-parameters as a Namespace
    torch.save({"state_dict": {"sed_model.norm.bias": torch.ones(3)}, "hyper_parameters": Namespace(lr=1e-3)}, path)
    with pytest.raises(ValueError, match="trusted=True"):
        read_state_dict(path)
    state, source = read_state_dict(path, trusted=True)
    assert source == str(path) and torch.equal(state["norm.bias"], torch.ones(3))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_state_dict(tmp_path / "nope.ckpt")


class _Wrapper(nn.Module):
    """A multimodal-shaped model: the audio trunk's reference keys at the top level, a head elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.audio = HTSAT(config=HTSATConfig.quick())
        self.classifier = nn.Sequential()
        self.classifier.add_module("linear2", nn.Linear(192, 8))

    def reference_layout(self) -> ReferenceLayout:
        return self.audio.reference_layout().nested("audio.", "") + ReferenceLayout(
            prefixes=(("classifier.", "classifier."),),
            class_head=("classifier.linear2.weight", "classifier.linear2.bias"),
        )


def test_layouts_compose_for_wrapping_models():
    model = _Wrapper()
    exported = export_reference_state_dict(model)
    assert "sed_model.layers.0.blocks.0.attn.qkv.weight" in exported
    assert "sed_model.logmel_extractor.melW" in exported
    assert "sed_model.spectrogram_extractor.stft.conv_real.weight" in exported
    assert "sed_model.classifier.linear2.weight" in exported
    # an audio-only checkpoint loads into the wrapper's audio part; the classifier is missing
    audio = HTSAT(config=HTSATConfig.quick())
    report = load_reference_checkpoint(model, export_reference_state_dict(audio))
    assert set(report.missing) == {"classifier.linear2.weight", "classifier.linear2.bias"}
    assert torch.equal(model.audio.norm.weight, audio.norm.weight)
    # a 527-way classifier is skipped as a class head
    bigger = {k: v for k, v in exported.items()}
    bigger["sed_model.classifier.linear2.weight"] = torch.zeros(527, 192)
    assert load_reference_checkpoint(model, bigger).skipped["classifier.linear2.weight"].startswith("class head")
