"""merlib.analysis: neighbour accuracy, t-SNE, embeddings, the three figures and the robustness sweep."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from merlib import analysis as A
from merlib.evaluation import Predictions, confusion, evaluate_models
from merlib.models.mer import build_model

PNG = b"\x89PNG\r\n\x1a\n"


def _blobs(n_per: int = 6, classes: int = 8, actors: int = 4, dim: int = 20, emotion_scale: float = 5.0,
           actor_scale: float = 0.0, seed: int = 0):
    """Features = emotion centre · emotion_scale + actor centre · actor_scale + noise."""
    rng = np.random.default_rng(seed)
    e_centres, a_centres = rng.normal(size=(classes, dim)), rng.normal(size=(actors, dim))
    labels = np.repeat(np.arange(classes), n_per)
    groups = np.tile(np.arange(actors), classes * n_per // actors + 1)[: labels.size]
    x = emotion_scale * e_centres[labels] + actor_scale * a_centres[groups] + 0.3 * rng.normal(size=(labels.size, dim))
    return x, labels, groups


# ---------------------------------------------------------------------------------------- neighbour accuracy


def test_neighbour_accuracy_separates_emotion_from_speaker():
    x, y, g = _blobs(emotion_scale=5.0, actor_scale=0.0)
    assert A.neighbour_accuracy(x, y, groups=g) == 100.0
    # features that only know the speaker: perfect speaker identity, emotion at chance once same-actor
    # neighbours are excluded
    x, y, g = _blobs(emotion_scale=0.0, actor_scale=5.0, n_per=8)
    assert A.neighbour_accuracy(x, g) == 100.0
    assert A.neighbour_accuracy(x, y, groups=g) < 30.0


def test_neighbour_accuracy_by_hand():
    # 1-D points: 0 and 1 are class 0, 10 and 11 are class 1; with k=1 every point's neighbour is its own class
    x = np.array([[0.0], [1.0], [10.0], [11.0]])
    assert A.neighbour_accuracy(x, [0, 0, 1, 1], k=1) == 100.0
    # groups that hold each class whole leave only the other class as neighbours
    assert A.neighbour_accuracy(x, [0, 0, 1, 1], groups=[0, 0, 1, 1], k=1) == 0.0
    # 0 and 11 in one group, 1 and 10 in the other: 0's nearest allowed is 1 (same class), 11's is 10
    assert A.neighbour_accuracy(x, [0, 0, 1, 1], groups=[0, 1, 1, 0], k=1) == 100.0
    with pytest.raises(ValueError, match="no neighbour"):
        A.neighbour_accuracy(x, [0, 0, 1, 1], groups=[0, 0, 0, 0], k=1)


def test_tsne_is_deterministic_and_handles_small_sets():
    x, y, _ = _blobs(n_per=3)
    a, b = A.tsne_2d(x, seed=1), A.tsne_2d(x, seed=1)
    assert a.shape == (24, 2) and np.allclose(a, b)
    assert A.tsne_2d(x[:7], seed=0).shape == (7, 2)  # perplexity capped at (n - 1) / 3
    with pytest.raises(ValueError, match="at least 5"):
        A.tsne_2d(x[:3])


# ------------------------------------------------------------------------------------------- embeddings


class _Batches:
    def __init__(self, n: int = 6, mics: int = 3, frames: int = 4, size: int = 32) -> None:
        g = torch.Generator().manual_seed(0)
        self.items = [{"waveform": 0.1 * torch.randn(3, mics, 64000, generator=g),
                       "video": torch.randn(3, 3, frames, size, size, generator=g),
                       "label": torch.tensor([b * 3 + i for i in range(3)]) % 8,
                       "actor": torch.tensor([1, 2, 3]), "clip_id": [f"c{b}{i}" for i in range(3)]}
                      for b in range(n // 3)]

    def __iter__(self):
        return iter(self.items)


def test_collect_embeddings_of_the_fused_model():
    torch.manual_seed(0)
    model = build_model("mer_sum_pe", "quick").train()
    emb = A.collect_embeddings(model, "mer_sum_pe", _Batches(), video_grid=8)
    assert model.training  # the caller's mode is restored
    assert list(emb.features) == ["audio_input", "video_input", "inputs", "audio", "video", "fused", "logits"]
    shapes = {k: v.shape for k, v in emb.features.items()}
    assert shapes["audio_input"] == (6, 401 * 64) and shapes["video_input"] == (6, 3 * 4 * 8 * 8)
    assert shapes["audio"] == (6, 192) and shapes["video"] == (6, 192) and shapes["fused"] == (6, 384)
    assert np.allclose(emb.features["fused"][:, :192], emb.features["video"])  # video first, as MER concatenates
    assert emb.labels.tolist() == [0, 1, 2, 3, 4, 5] and emb.clip_ids.tolist()[3] == "c10"
    # the embeddings are the model's: its logits from the fused vector
    with torch.no_grad():
        logits = model.eval().classifier(torch.from_numpy(emb.features["fused"]))
    assert np.allclose(logits.numpy(), emb.features["logits"], atol=1e-5)


def test_collect_embeddings_of_an_audio_model_has_no_video():
    model = build_model("audio_avg_mel", "quick")
    batches = _Batches()
    for b in batches.items:
        del b["video"]
    emb = A.collect_embeddings(model, "audio_avg_mel", batches)
    assert list(emb.features) == ["audio_input", "audio", "logits"]
    maps = A.tsne_maps(emb, ["audio_input", "audio"])
    assert set(maps) == {"audio_input", "audio"} and maps["audio"].shape == (6, 2)
    with pytest.raises(KeyError, match="fused"):
        A.tsne_maps(emb, ["fused"])


# ----------------------------------------------------------------------------------------------- figures


def _predictions(condition: str, correct: int, n: int = 16, seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 8
    pred = labels.copy()
    wrong = rng.choice(n, n - correct, replace=False)
    pred[wrong] = (labels[wrong] + 1) % 8
    logits = np.eye(8, dtype=np.float32)[pred]
    return Predictions(logits, labels, np.full(n, 3), [f"c{i}" for i in range(n)], [condition] * n)


def test_plot_tsne_saves_a_png(tmp_path: Path):
    x, y, _ = _blobs(n_per=3)
    maps = {"audio": A.tsne_2d(x), "fused": A.tsne_2d(x * 2)}
    fig = A.plot_tsne(maps, y, {"audio": 40.0}, out_dir=tmp_path, name="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert "40 % neighbour accuracy" in fig.axes[0].get_title()
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG


def test_plot_confusion_shows_the_row_normalised_percentages(tmp_path: Path):
    p = _predictions("Lecture 2", correct=12)
    fig = A.plot_confusion({"MER": p, "audio": _predictions("Lecture 2", 4, seed=1)}, out_dir=tmp_path)
    drawn = np.asarray(fig.axes[0].collections[0].get_array()).reshape(8, 8)
    assert np.allclose(drawn, confusion(p))
    assert "accuracy 75.0 %" in fig.axes[0].get_title()
    assert (tmp_path / "confusion.png").exists()
    table = A.per_class_table({"MER": p})
    assert list(table.columns.get_level_values("metric")[:3]) == ["precision", "recall", "f1"]
    assert table.loc["neutral", ("MER", "recall")] == pytest.approx(100 * np.mean(p.predicted[p.labels == 0] == 0))
    A.plot_per_class({"MER": p}, "f1", out_dir=tmp_path)
    with pytest.raises(ValueError, match="metric"):
        A.plot_per_class({"MER": p}, "accuracy")


def test_plot_room_accuracy_draws_ours_and_the_papers(tmp_path: Path):
    preds = {"mer_sum_pe": {"Lecture 1": _predictions("Lecture 1", 12), "Lobby": _predictions("Lobby", 8)},
             "audio_sum_pe": {"Lecture 1": _predictions("Lecture 1", 6)}}
    per_room = evaluate_models(preds)
    fig = A.plot_room_accuracy(per_room, out_dir=tmp_path)
    ax = fig.axes[0]
    ys = sorted({round(float(v), 2) for line in ax.lines for v in np.atleast_1d(line.get_ydata())})
    assert 75.0 in ys and 50.0 in ys and 37.5 in ys  # ours: 12/16, 8/16, 6/16
    assert 78.3 in ys and 77.7 in ys and 61.1 in ys  # the paper's MER Sum PE Lecture 1 / Lobby, audio Sum PE Lecture 1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Lecture 1", "Lobby"]
    fig = A.plot_room_accuracy(per_room, paper=False, interval="actor")
    assert 78.3 not in {round(float(v), 2) for line in fig.axes[0].lines for v in np.atleast_1d(line.get_ydata())}
    assert (tmp_path / "room_accuracy.png").exists()


# ------------------------------------------------------------------------------------------- robustness


def test_draw_scene_places_the_array_at_the_asked_ratio():
    for ratio in (0.5, 1.0, 3.0):
        scene = A.draw_scene(np.random.default_rng(3), t60=0.6, distance_ratio=ratio)
        assert scene.t60 == 0.6
        assert scene.distance == pytest.approx(ratio * scene.critical_distance)
        assert np.linalg.norm(scene.mics.mean(0) - scene.src) == pytest.approx(scene.distance)
        assert np.all(scene.mics[:, :2] >= 0.1) and np.all(scene.mics[:, :2] <= scene.room_dim[:2] - 0.1)
        assert scene.drr_theory_db == pytest.approx(-20 * math.log10(ratio))
    a = A.draw_scene(np.random.default_rng(5), 0.9)
    b = A.draw_scene(np.random.default_rng(5), 0.9)
    assert np.array_equal(a.mics, b.mics) and a.t60 == 0.9 and 0.2 <= a.distance <= a.critical_distance
    with pytest.raises(ValueError, match="no paper-protocol room"):
        A.draw_scene(np.random.default_rng(0), 0.3, distance_ratio=40.0, max_rooms=3)


class _Out(NamedTuple):
    logits: torch.Tensor
    embedding: torch.Tensor


class _Recorder(nn.Module):
    """Always predicts class ``k`` and keeps every waveform batch it is given."""

    def __init__(self, k: int = 0) -> None:
        super().__init__()
        self.k = k
        self.seen: list[torch.Tensor] = []

    def forward(self, waveforms: torch.Tensor) -> _Out:
        self.seen.append(waveforms.clone())
        logits = torch.zeros(waveforms.shape[0], 8)
        logits[:, self.k] = 1.0
        return _Out(logits, logits)


def _clips(n: int = 6) -> list[A.EvalClip]:
    rng = np.random.default_rng(0)
    return [A.EvalClip(f"clip{i}", i % 8, 1, (0.1 * rng.standard_normal(16000)).astype(np.float32)) for i in range(n)]


def test_robustness_sweep_feeds_every_model_the_same_rooms():
    clips = _clips()
    single, multi = _Recorder(0), _Recorder(1)
    cfg = A.SweepConfig(t60s=(0.3, 0.9), distance_ratios=(0.5, 2.0), t60_for_distance=0.5)
    df = A.robustness_sweep({"audio_rev_sc": single, "audio_sum_pe": multi}, clips, cfg, seed=0, batch_size=4)
    assert len(df) == 4 * 2 and set(df["sweep"]) == {"t60", "distance"}
    # a constant class-0 predictor scores the share of class-0 clips, class 1 likewise
    assert np.allclose(df["accuracy"], 100 / 6)  # one clip of six is class 0, one class 1
    assert (df["low"] <= df["accuracy"]).all() and (df["accuracy"] <= df["high"]).all() and df["n"].eq(6).all()
    dist = df[df.sweep == "distance"].drop_duplicates("distance_ratio").set_index("distance_ratio")
    assert dist.loc[0.5, "mean_drr_db"] == pytest.approx(6.02, abs=0.01)
    assert dist.loc[2.0, "mean_distance"] > dist.loc[0.5, "mean_distance"]
    assert df.loc[df.sweep == "t60", "distance_ratio"].isna().all()
    # microphones: the single-channel model reads microphone 1 of the very signals the 3-mic model reads
    assert all(w.shape[1] == 1 for w in single.seen) and all(w.shape[1] == 3 for w in multi.seen)
    assert all(torch.equal(a[:, 0], b[:, 0]) for a, b in zip(single.seen, multi.seen))
    # a new room per point: the signals differ between points; the same seed gives the same table and signals
    assert not torch.equal(single.seen[0], single.seen[2])
    again = _Recorder(0)
    df2 = A.robustness_sweep({"audio_rev_sc": again}, clips, cfg, seed=0, batch_size=4)
    assert all(torch.equal(a, b) for a, b in zip(single.seen, again.seen))
    pd.testing.assert_frame_equal(df2, df[df.model == "audio_rev_sc"].reset_index(drop=True))
    fig = A.plot_robustness(df)
    assert len(fig.axes) == 2 and fig.axes[1].get_xscale() == "log"


def test_robustness_sweep_asks_for_frames_when_a_model_reads_video():
    with pytest.raises(ValueError, match="video=True"):
        A.robustness_sweep({"mer_sum_pe": build_model("mer_sum_pe", "quick")}, _clips(2))


@pytest.mark.slow
def test_load_eval_clips_from_a_real_build(quick_corpus):
    from merlib.data.reverberant import read_manifest
    from merlib.datasets import prepare_corpora
    from merlib.data.video import FrameSettings

    paths = prepare_corpora(quick_corpus, seed=0, frame_settings=FrameSettings.quick(), progress=False)
    clips = A.load_eval_clips(paths, "test")
    rows = [r for r in read_manifest(paths.reverberant) if r["split"] == "test" and r["condition"] == "clean"]
    assert [c.clip_id for c in clips] == [r["clip_id"] for r in rows] and len(clips) == 48  # 3 test actors × 16
    assert all(c.waveform.shape == (64000,) and c.video is not None and c.video.shape[0] == 3 for c in clips)
    assert {c.actor for c in clips} == {int(r["actor"]) for r in rows}
    assert len(A.load_eval_clips(paths.reverberant, "val", video=False, max_clips=3)) == 3
    with pytest.raises(ValueError, match="frame cache"):
        A.load_eval_clips(paths.reverberant, "test", video=True)


def test_reducing_once_gives_the_same_maps_and_scores():
    x, y, g = _blobs(n_per=4, dim=80, actor_scale=2.0)
    emb = A.EmbeddingSet(y, g, np.array([str(i) for i in range(len(y))]), {"f": x})
    small = emb.reduced()
    assert small.features["f"].shape == (32, 31)  # PCA to min(50, N - 1, D)
    assert A.neighbour_accuracy(small.features["f"], y, groups=g) == A.neighbour_accuracy(x, y, groups=g)
    np.testing.assert_allclose(A.tsne_maps(small)["f"], A.tsne_2d(x), atol=1e-3)
