"""The fusion model (merlib.models.mer): parameter count, frozen head, golden outputs, Table II specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from merlib.models.checkpoints import (
    export_reference_state_dict,
    golden_fill,
    golden_video,
    golden_waveforms,
    load_reference_checkpoint,
    read_key_table,
)
from merlib.models.htsat import HTSAT, HTSATConfig
from merlib.models.mer import (
    MER,
    MODEL_SPECS,
    MEROutput,
    build_model,
    count_parameters,
    embeddings,
    forward_logits,
    get_spec,
)
from merlib.models.video import VideoClassifier, VideoEncoder

DATA = Path(__file__).parent / "data"
GOLDEN = np.load(DATA / "golden_reference_outputs.npz")
KEYS = read_key_table(DATA / "mmer_state_dict_keys.tsv")


def _rel(a: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.linalg.norm(a.detach().numpy() - ref) / np.linalg.norm(ref))


def _quick_batch(mics: int, batch: int = 2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"waveform": torch.randn(batch, mics, 64000, generator=g),
            "video": torch.randn(batch, 3, 4, 32, 32, generator=g), "label": torch.arange(batch)}


@pytest.fixture(scope="module")
def paper_sum_pe() -> MER:
    return build_model("mer_sum_pe", "paper")


def test_paper_parameter_count_and_frozen_audio_head(paper_sum_pe: MER):
    model = paper_sum_pe
    assert count_parameters(model) == 61_638_669  # docs/design.md §5
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"audio.tscam_conv.weight", "audio.tscam_conv.bias", "audio.head.weight", "audio.head.bias"}
    assert count_parameters(model, trainable_only=True) == 61_638_669 - 36_872 - 72
    assert model.classifier.linear1.in_features == 1536 and model.classifier.linear1.out_features == 1536
    assert model.classifier.linear2.out_features == 8


def test_export_matches_the_reference_key_table(paper_sum_pe: MER):
    shapes = {k[len("sed_model."):]: tuple(v.shape) for k, v in export_reference_state_dict(paper_sum_pe).items()}
    assert shapes == KEYS  # all 428 entries of the authors' multimodal model, same names and shapes


@pytest.mark.slow
@pytest.mark.parametrize("config, mode", [("mer_sum_c3", "sum_pe"), ("mer_avg_mel_c3", "avg_mel")])
def test_golden_logits_of_the_reference(config: str, mode: str, paper_sum_pe: MER):
    # paper size, video 8×224×224: one forward of a few seconds on the CPU
    model = paper_sum_pe if mode == "sum_pe" else build_model("mer_avg_mel", "paper")
    state = golden_fill(model, GOLDEN["melW_32k"], KEYS)
    report = load_reference_checkpoint(model, {"state_dict": {"sed_model." + k: v for k, v in state.items()}})
    assert report.missing == []
    assert len(report.loaded) + len(report.skipped) == len(KEYS)
    model.eval()
    with torch.no_grad():
        out = model(golden_waveforms(3), golden_video())
    assert isinstance(out, MEROutput)
    assert out.audio_embedding.shape == (2, 768) and out.video_embedding.shape == (2, 768)
    assert _rel(out.logits, GOLDEN[f"{config}_logits"]) < 1e-4


def test_every_trainable_parameter_gets_a_gradient():
    # what lets DDP run without find_unused_parameters
    torch.manual_seed(0)
    model = build_model("mer_sum_pe", "quick")
    batch = _quick_batch(3)
    forward_logits(model, "mer_sum_pe", batch).sum().backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    assert model.audio.tscam_conv.weight.grad is None


def test_fusion_is_video_first_concatenation():
    torch.manual_seed(0)
    model = build_model("mer_rev_sc", "quick").eval()
    batch = _quick_batch(1)
    with torch.no_grad():
        out = model(batch["waveform"], batch["video"])
        assert out.audio_embedding.shape == (2, model.audio.embedding_dim)
        fused = torch.cat([model.video(batch["video"]), model.audio(batch["waveform"]).embedding], dim=1)
        expected = model.classifier.linear2(torch.relu(model.classifier.linear1(fused)))
    assert torch.allclose(out.logits, expected, atol=1e-6)
    assert out.logits.shape == (2, 8)
    with pytest.raises(ValueError, match="one of each per clip"):
        model(batch["waveform"], batch["video"][:1])


def test_table_ii_specs():
    assert list(MODEL_SPECS) == ["video", "audio_clean_sc", "audio_rev_sc", "audio_avg_mel", "audio_sum_pe",
                                 "mer_clean_sc", "mer_rev_sc", "mer_avg_mel", "mer_sum_pe"]
    for name, spec in MODEL_SPECS.items():
        assert spec.name == name
        assert spec.train_condition == ("clean" if name.endswith("clean_sc") else "reverberant")
        if name == "video":
            assert spec.inputs == ("video",) and spec.num_mics == 0
            continue
        assert spec.num_mics == (1 if name.endswith("_sc") else 3)
        assert spec.mode == ("sum_pe" if name.endswith("sum_pe") else "avg_mel")
        assert spec.inputs == (("audio", "video") if name.startswith("mer_") else ("audio",))
    with pytest.raises(ValueError, match="unknown model 'mer_concat'.*mer_sum_pe"):
        get_spec("mer_concat")


@pytest.mark.slow
def test_build_model_quick_for_all_nine():
    batch = {"waveform": torch.randn(2, 3, 64000), "video": torch.randn(2, 3, 4, 32, 32)}
    for name, spec in MODEL_SPECS.items():
        torch.manual_seed(0)
        model = build_model(name, "quick").eval()
        kind = MER if spec.uses_video and spec.uses_audio else (VideoClassifier if spec.uses_video else HTSAT)
        assert isinstance(model, kind), name
        if spec.uses_audio:
            audio = model.audio if isinstance(model, MER) else model
            assert (audio.num_mics, audio.mode, audio.embedding_dim) == (spec.num_mics, spec.mode, 192)
        mics = max(spec.num_mics, 1)
        inputs = {"waveform": batch["waveform"][:, :mics], "video": batch["video"]}
        with torch.no_grad():
            assert forward_logits(model, spec, inputs).shape == (2, 8), name
            emb = embeddings(model, spec, inputs)
        assert set(emb) == {"logits"} | set(spec.inputs)


def test_build_model_argument_errors():
    with pytest.raises(ValueError, match="no audio branch"):
        build_model("video", "quick", audio_weights="x.ckpt")
    with pytest.raises(ValueError, match="no video branch"):
        build_model("audio_sum_pe", "quick", video_weights="kinetics400")
    with pytest.raises(ValueError, match="size must be"):
        build_model("audio_sum_pe", "tiny")
    with pytest.raises(KeyError, match="needs batch\\['video'\\]"):
        forward_logits(HTSAT(config=HTSATConfig.quick()), "mer_rev_sc", {"waveform": torch.zeros(1, 1, 64000)})
    with pytest.raises(TypeError, match="pass classifier.encoder"):
        MER(HTSAT(config=HTSATConfig.quick()), VideoClassifier())


def test_fine_tuning_from_an_audioset_checkpoint(tmp_path: Path):
    # a stand-in for HTSAT_AudioSet_Saved_1.ckpt: reference layout, 527 classes
    audioset = HTSAT(num_mics=1, num_classes=527, config=HTSATConfig.quick())
    path = tmp_path / "HTSAT_AudioSet_Saved_1.ckpt"
    torch.save({"state_dict": export_reference_state_dict(audioset)}, path)
    model = build_model("mer_avg_mel", "quick", audio_weights=path)
    report = model.audio_weights_report
    assert report is not None and report.skipped["tscam_conv.weight"].startswith("class head")
    assert torch.equal(model.audio.layers[1].blocks[0].attn.qkv.weight, audioset.layers[1].blocks[0].attn.qkv.weight)
    assert torch.equal(model.audio.bn0.running_mean, audioset.bn0.running_mean)
    assert not model.audio.tscam_conv.weight.requires_grad  # still frozen after loading


def test_multimodal_checkpoint_round_trip():
    torch.manual_seed(1)
    src = build_model("mer_sum_pe", "quick")
    dst = build_model("mer_sum_pe", "quick")
    report = load_reference_checkpoint(dst, export_reference_state_dict(src))
    assert report.missing == []
    for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
        assert torch.equal(a, b), k
    # the audio-only model takes the audio part of a multimodal checkpoint and reports the rest
    audio = build_model("audio_sum_pe", "quick")
    report = load_reference_checkpoint(audio, export_reference_state_dict(src))
    assert report.skipped["classifier.linear1.weight"] == "not part of HTSAT"
    assert torch.equal(audio.norm.weight, src.audio.norm.weight)


def test_audio_branch_of_each_kind_of_model():
    from merlib.models.mer import audio_branch

    audio = build_model("audio_sum_pe", "quick")
    mer = build_model("mer_avg_mel", "quick")
    assert audio_branch(audio) is audio and audio_branch(mer) is mer.audio
    assert audio_branch(build_model("video", "quick")) is None
