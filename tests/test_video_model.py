"""The R(2+1)D-18 video encoder and the video-only classifier (merlib.models.video).

Sizes and the golden check use the paper-size model (the only full-size forward pass is the golden one);
everything else runs at quick size (R(2+1)D takes any input size) to stay fast on CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from merlib.models.checkpoints import (
    export_reference_state_dict,
    golden_fill,
    golden_video,
    load_reference_checkpoint,
    read_key_table,
)
from merlib.models.video import (
    DOWNLOAD_HINT,
    VideoClassifier,
    VideoEncoder,
    conv_parameter_counts,
    count_parameters,
    kinetics400_weights_path,
)

DATA = Path(__file__).parent / "data"
GOLDEN = np.load(DATA / "golden_reference_outputs.npz")
# the video-only model's reference keys: the encoder's from the table, the 768-wide head (the table lists the
# multimodal model, whose head is 1536 wide)
VIDEO_ONLY_KEYS = {k: s for k, s in read_key_table(DATA / "mmer_state_dict_keys.tsv").items()
                   if k.startswith("video_encoder.")}
VIDEO_ONLY_KEYS.update({"classifier.linear1.weight": (768, 768), "classifier.linear1.bias": (768,),
                        "classifier.linear2.weight": (8, 768), "classifier.linear2.bias": (8,)})


def _quick_video(b: int = 2, t: int = 4, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 3, t, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def paper_model() -> VideoClassifier:
    torch.manual_seed(0)
    return VideoClassifier(num_classes=8)


def test_parameter_counts_are_the_references(paper_model):
    assert count_parameters(paper_model) == 32_290_853  # the reference's video-only 32.291 M
    assert count_parameters(paper_model.encoder) == 31_694_109
    assert count_parameters(paper_model.encoder.model) - 512 * 768 - 768 == 31_300_125  # trunk (§1.15)
    assert count_parameters(paper_model, trainable_only=True) == 32_290_853
    assert paper_model.embedding_dim == paper_model.encoder.embedding_dim == 768
    fc = paper_model.encoder.model.fc
    assert isinstance(fc[0], torch.nn.Dropout) and fc[0].p == 0.1 and fc[1].in_features == 512


@pytest.mark.slow
def test_golden_outputs_of_the_reference(paper_model):
    """The recipe-filled state dict of docs/reference-model.md §3 gives the reference's stored video-only logits."""
    state = golden_fill(paper_model, GOLDEN["melW_32k"], VIDEO_ONLY_KEYS)
    assert set(state) == set(VIDEO_ONLY_KEYS)
    report = load_reference_checkpoint(paper_model, {"state_dict": {"sed_model." + k: v for k, v in state.items()}})
    assert report.missing == [] and report.skipped == {} and len(report.loaded) == len(VIDEO_ONLY_KEYS) == 228
    paper_model.eval()
    with torch.no_grad():
        logits = paper_model(golden_video())
    ref = GOLDEN["video_only_logits"]
    assert logits.shape == (2, 8)
    assert np.linalg.norm(logits.numpy() - ref) / np.linalg.norm(ref) < 1e-4
    # and the export is exactly the reference layout with the loaded values
    exported = {k[len("sed_model."):]: v for k, v in export_reference_state_dict(paper_model).items()}
    assert {k: tuple(v.shape) for k, v in exported.items()} == VIDEO_ONLY_KEYS
    assert all(torch.equal(exported[k], state[k]) for k in state)


@pytest.mark.slow
def test_quick_size_forward_and_embedding():
    torch.manual_seed(0)
    model = VideoClassifier(num_classes=5).eval()
    with torch.no_grad():
        logits = model(_quick_video())
        emb = model.embed(_quick_video())
        tiny = model.encoder(_quick_video(1, t=1, size=32))  # any T ≥ 1, any H, W ≥ 16
    assert logits.shape == (2, 5) and emb.shape == (2, 768) and tiny.shape == (1, 768)
    assert torch.allclose(model.classifier(emb), logits, atol=1e-6)
    assert torch.isfinite(logits).all()
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model(torch.randn(2, 4, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model.encoder(torch.randn(3, 4, 64, 64))


@pytest.mark.slow
def test_every_parameter_trains():
    torch.manual_seed(0)
    model = VideoClassifier().train()
    loss = F.cross_entropy(model(_quick_video(2, 4, 32)), torch.tensor([1, 6]))
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []


def test_class_head_is_skipped_when_the_class_count_differs():
    torch.manual_seed(0)
    eight = VideoClassifier(num_classes=8)
    four = VideoClassifier(num_classes=4)
    report = load_reference_checkpoint(four, export_reference_state_dict(eight))
    assert sorted(report.skipped) == ["classifier.linear2.bias", "classifier.linear2.weight"]
    assert torch.equal(four.encoder.model.stem[0].weight, eight.encoder.model.stem[0].weight)
    # a bare encoder takes the encoder keys of a video-only (or multimodal) checkpoint
    enc = VideoEncoder()
    report = load_reference_checkpoint(enc, export_reference_state_dict(eight))
    assert report.missing == [] and all(r == "not part of VideoEncoder" for r in report.skipped.values())
    assert torch.equal(enc.model.fc[1].weight, eight.encoder.model.fc[1].weight)


def test_factorised_convolution_counts_match_torchvision(paper_model):
    c = conv_parameter_counts(64, 64)
    assert c["midplanes"] == 144 and c["full_3d"] == 64 * 64 * 27 == 110_592
    block = paper_model.encoder.model.layer1[0].conv1[0]  # Conv2Plus1D: conv(1×3×3), BN, ReLU, conv(3×1×1)
    assert sum(p.numel() for p in block.parameters()) == c["factorised"] == 110_880
    c = conv_parameter_counts(256, 512)
    assert paper_model.encoder.model.layer4[0].conv1[0][0].out_channels == c["midplanes"] == 921
    assert abs(c["factorised"] - c["full_3d"]) / c["full_3d"] < 0.01  # same budget, one more non-linearity


# -------------------------------------------------------------------------------------------------- weights


@pytest.fixture(scope="module")
def kinetics_like_file(tmp_path_factory) -> tuple[Path, dict]:
    """A torchvision-layout R(2+1)D-18 state dict (400-way fc) under a fake torch hub cache."""
    from torchvision.models.video import r2plus1d_18

    hub = tmp_path_factory.mktemp("hub")
    torch.manual_seed(123)
    state = r2plus1d_18(num_classes=400).state_dict()
    name = Path(kinetics400_weights_path()).name
    (hub / "checkpoints").mkdir()
    torch.save(state, hub / "checkpoints" / name)
    return hub, state


def test_kinetics400_without_the_cached_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        VideoEncoder(weights="kinetics400")
    msg = str(err.value)
    assert str(tmp_path / "checkpoints" / "r2plus1d_18-91a641e6.pth") in msg and DOWNLOAD_HINT in msg
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VideoEncoder(weights=tmp_path / "nope.pth")


@pytest.mark.slow
def test_kinetics400_from_the_local_hub_cache_and_from_a_path(kinetics_like_file, monkeypatch):
    hub, state = kinetics_like_file
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    torch.manual_seed(7)
    enc = VideoEncoder(weights="kinetics400")
    own = enc.model.state_dict()
    trunk = [k for k in state if not k.startswith("fc.")]
    assert all(torch.equal(own[k], state[k]) for k in trunk)
    assert own["fc.1.weight"].shape == (768, 512)  # the 400-way head is not used
    assert enc.weights_report.missing == ["model.fc.1.weight", "model.fc.1.bias"]
    by_path = VideoClassifier(weights=hub / "checkpoints" / kinetics400_weights_path().name)
    assert torch.equal(by_path.encoder.model.layer4[1].conv2[0][3].weight, state["layer4.1.conv2.0.3.weight"])


def test_weights_without_the_trunk_are_refused(tmp_path):
    path = tmp_path / "partial.pth"
    torch.save({"stem.0.weight": torch.zeros(45, 3, 1, 7, 7)}, path)
    with pytest.raises(ValueError, match=r"partial\.pth lack .* trunk entries"):
        VideoEncoder(weights=path)


@pytest.mark.gpu
def test_bf16_autocast_on_cuda():
    """Needs CUDA: checks that the encoder runs under bf16 autocast (the benchmark's GPU setting) and agrees
    with float32 to bf16 precision."""
    torch.manual_seed(0)
    model = VideoClassifier().cuda().eval()
    x = _quick_video(2, 8, 112).cuda()
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16 and torch.isfinite(low).all()
    assert (low.float() - ref).norm() / ref.norm() < 0.05
