"""`merlib check-weights`: every checkpoint format merlib meets, made small here (quick-size models), no downloads."""

from __future__ import annotations

import argparse

from pathlib import Path

import pytest
import torch

from merlib.cli import main
from merlib.models.checkpoints import export_reference_state_dict, identify_checkpoint
from merlib.models.htsat import HTSAT, HTSATConfig
from merlib.models.mer import build_model

AUDIO = ("audio_clean_sc", "audio_rev_sc", "audio_avg_mel", "audio_sum_pe")
MER = ("mer_clean_sc", "mer_rev_sc", "mer_avg_mel", "mer_sum_pe")


def _lightning(state: dict) -> dict:
    """What Lightning writes around a merlib EmotionModule (the network under ``model.``)."""
    return {"epoch": 3, "global_step": 12, "pytorch-lightning_version": "2.6.6",
            "state_dict": {"model." + k: v for k, v in state.items()},
            "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 3}}}}, "optimizer_states": [{}],
            "callbacks": {"EarlyStopping": {"wait_count": 0, "best_score": torch.tensor(0.5)}}}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    audio = build_model("audio_sum_pe", "quick")
    video = build_model("video", "quick")
    mer = build_model("mer_avg_mel", "quick")
    made = {
        "audioset": {"state_dict": export_reference_state_dict(HTSAT(num_classes=527, config=HTSATConfig.quick()))},
        "ref_audio": {"state_dict": export_reference_state_dict(audio)},
        "ref_video": {"state_dict": export_reference_state_dict(video)},
        "ref_mm": {"state_dict": export_reference_state_dict(mer)},
        "final_audio": audio.state_dict(),
        "final_mer": mer.state_dict(),
        "lightning_video": _lightning(video.state_dict()),
        "torchvision": __import__("torchvision").models.video.r2plus1d_18().state_dict(),
        "unknown": {"foo.weight": torch.zeros(3, 2)},
        "a_list": [torch.zeros(2)],
    }
    out = {}
    for name, obj in made.items():
        out[name] = d / f"{name}.ckpt"
        torch.save(obj, out[name])
    out["text"] = d / "notes.ckpt"
    out["text"].write_text("this is not a checkpoint\n")
    return out


def _ok(info, models):
    attempt = next(a for a in info.loads if a.models == models)
    assert attempt.ok, attempt.error
    return attempt.report


def test_htsat_audioset_checkpoint(files):
    info = identify_checkpoint(files["audioset"])
    assert info.kind == "htsat_audioset" and info.num_classes == 527 and info.size == "quick"
    assert info.naming == "reference (sed_model.)" and info.container.startswith("Lightning")
    assert info.audio_arch["embed_dim"] == 24 and info.audio_arch["depths"] == (1, 1, 1, 1)
    report = _ok(info, AUDIO)
    assert sum("class head" in why for why in report.skipped.values()) == 4  # tscam_conv and head, 527 ≠ 8
    assert _ok(info, MER).loaded  # as the audio branch
    text = info.summary()
    assert "HTS-AT AudioSet" in text and "loads (new class head)" in text and "fine-tune" in text


def test_authors_audio_video_and_multimodal_checkpoints(files):
    audio = identify_checkpoint(files["ref_audio"])
    assert (audio.kind, audio.num_classes, audio.size) == ("reference_audio", 8, "quick")
    assert not _ok(audio, AUDIO).missing
    assert "16 kHz bank with fmax 8000" in audio.filterbank  # a from-scratch model's front end

    video = identify_checkpoint(files["ref_video"])
    assert (video.kind, video.num_classes, video.size) == ("reference_video", 8, None)
    assert not _ok(video, ("video",)).missing
    branch = _ok(video, MER)
    assert not branch.missing and any(k.startswith("classifier.") for k in branch.skipped)

    mm = identify_checkpoint(files["ref_mm"])
    assert (mm.kind, mm.num_classes, mm.size) == ("reference_multimodal", 8, "quick")
    assert not _ok(mm, MER).missing and [a.models for a in mm.loads] == [MER]


def test_merlib_final_pt_and_lightning_ckpt(files):
    audio = identify_checkpoint(files["final_audio"])
    assert (audio.kind, audio.naming, audio.container) == ("merlib_audio", "merlib", "plain state dict")
    assert not _ok(audio, AUDIO).missing

    mer = identify_checkpoint(files["final_mer"])
    assert mer.kind == "merlib_mer" and mer.size == "quick" and not _ok(mer, MER).missing

    lit = identify_checkpoint(files["lightning_video"])
    assert lit.kind == "merlib_video" and lit.naming == "merlib Lightning (model.)"
    assert lit.extras["epoch"] == 3 and lit.extras["pytorch-lightning_version"] == "2.6.6"
    assert not _ok(lit, ("video",)).missing and not _ok(lit, MER).missing
    assert "epoch=3" in lit.summary()


def test_torchvision_r2plus1d(files):
    info = identify_checkpoint(files["torchvision"])
    assert info.kind == "torchvision_r2plus1d" and info.num_classes == 400
    branch = _ok(info, MER)
    assert branch.missing == ["model.fc.1.weight", "model.fc.1.bias"]  # the 512 → 768 projection stays new
    assert "Kinetics" in info.summary()


def test_paper_size_is_inferred_from_shapes(tmp_path):
    path = tmp_path / "paper_audio.pt"
    torch.save(HTSAT(num_classes=8).state_dict(), path)
    info = identify_checkpoint(path, try_load=False)
    assert info.size == "paper" and info.audio_arch["num_heads"] == (4, 8, 16, 32) and not info.loads
    assert "768-d embedding" in info.summary()


def test_not_a_checkpoint(files, tmp_path, capsys):
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        identify_checkpoint(files["text"])
    with pytest.raises(ValueError, match="holds a list"):
        identify_checkpoint(files["a_list"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        identify_checkpoint(tmp_path / "nothing.ckpt")
    unknown = identify_checkpoint(files["unknown"])
    assert unknown.kind == "unknown" and "foo.weight" in unknown.summary()

    # a pickled object (Lightning 1.x files often hold hyper-parameter Namespaces): weights_only refuses it,
    # and the message says what to do
    torch.save({"state_dict": {"a": torch.zeros(1)}, "hparams": argparse.Namespace(lr=1e-3)}, tmp_path / "custom.ckpt")
    with pytest.raises(ValueError, match="--trusted"):
        identify_checkpoint(tmp_path / "custom.ckpt")

    assert main(["check-weights", str(files["text"])]) == 2
    assert "not a PyTorch checkpoint" in capsys.readouterr().err
    assert main(["check-weights", str(files["unknown"])]) == 1


def test_cli_check_weights(files, capsys):
    assert main(["check-weights", str(files["ref_mm"])]) == 0
    out = capsys.readouterr().out
    assert "the authors' multimodal MER model" in out and "loads: mer_clean_sc" in out
