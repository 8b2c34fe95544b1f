"""Evaluation: the paper's bootstrap interval, per-actor resampling, predict(), the Table II layout and
``merlib evaluate`` (merlib/evaluation/, merlib/paper_results.py)."""

from __future__ import annotations

import argparse
import math
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
import torch

from merlib import evaluation as ev
from merlib import paper_results as pr
from merlib.evaluation import AccuracyCI, Predictions, accuracy_ci

N_TEST = 180  # the paper's test set: 3 actors x 60 clips
ACTORS_3 = np.repeat([3, 8, 17], 60)


def _preds_with_hits(k: int, n: int = N_TEST) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions where the first ``k`` of ``n`` clips are right."""
    labels = np.arange(n) % 8
    preds = labels.copy()
    preds[k:] = (preds[k:] + 1) % 8
    return preds, labels


def _truncate(x: float) -> float:
    # The paper truncates to one decimal (77/180 = 42.78 is printed 42.7).
    return math.floor(x * 10 + 1e-9) / 10


# ------------------------------------------------------------------------------------------------ intervals


def test_equals_the_package_call_clip_and_actor_resampling():
    from confidence_intervals import evaluate_with_conf_int
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 8, 150)
    preds = np.where(rng.random(150) < 0.6, labels, rng.integers(0, 8, 150))
    actors = rng.integers(1, 6, 150)
    for cond in (None, actors):
        c, (lo, hi) = evaluate_with_conf_int(preds, accuracy_score, labels, conditions=cond,
                                             num_bootstraps=200, alpha=25)
        ours = accuracy_ci(preds, labels, cond, num_bootstraps=200)
        assert ours == AccuracyCI(100 * c, 100 * lo, 100 * hi, 150)  # exact, not approximate


def test_paper_defaults_reproduce_published_intervals():
    from confidence_intervals import evaluate_with_conf_int
    from sklearn.metrics import accuracy_score

    # 125/180 and 139/180 right: the paper's video (Lecture 1) and MER Avg mel (Lecture 1) cells.
    for k, published in ((125, pr.TABLE_II["video"]["Lecture 1"]), (139, pr.TABLE_II["mer_avg_mel"]["Lecture 1"])):
        preds, labels = _preds_with_hits(k)
        ci = accuracy_ci(preds, labels)  # alpha 25, 1000 resamples
        assert (_truncate(ci.accuracy), _truncate(ci.low), _truncate(ci.high)) == tuple(published)
    c, (lo, hi) = evaluate_with_conf_int(preds, accuracy_score, labels, alpha=25)
    assert ci == AccuracyCI(100 * c, 100 * lo, 100 * hi, N_TEST)
    assert str(ci) == "77.2 [73.3, 81.1]"


@pytest.mark.slow
def test_per_actor_equals_package_at_paper_size():
    from confidence_intervals import evaluate_with_conf_int
    from sklearn.metrics import accuracy_score

    preds, labels = _preds_with_hits(125)
    c, (lo, hi) = evaluate_with_conf_int(preds, accuracy_score, labels, conditions=ACTORS_3, alpha=25)
    assert accuracy_ci(preds, labels, ACTORS_3) == AccuracyCI(100 * c, 100 * lo, 100 * hi, N_TEST)


def test_per_actor_interval_is_wider_when_errors_cluster_by_actor():
    # 6 actors x 30 clips; actors 1-3 always right, actors 4-6 always wrong: accuracy 50 %.
    actors = np.repeat(np.arange(1, 7), 30)
    labels = np.arange(180) % 8
    preds = np.where(actors <= 3, labels, (labels + 1) % 8)
    clip = accuracy_ci(preds, labels)
    actor = accuracy_ci(preds, labels, actors)
    assert clip.accuracy == actor.accuracy == 50.0
    # Per clip: ~binomial(180, 0.5) -> about +-4.6 pp; per actor: the number of "good" actors drawn varies.
    assert clip.width < 12
    assert actor.width > 2.5 * clip.width
    assert actor.low <= 40 and actor.high >= 60
    # Errors spread evenly (15 of 30 right for every actor, at random positions): the per-actor interval is
    # only somewhat wider. The package gives an actor drawn twice the same within-actor resample twice, which
    # inflates the variance by E[sum c^2] / E[sum c] = 11/6 for 6 actors: width x ~1.35, not x ~3 as above.
    rng = np.random.default_rng(0)
    hit = np.concatenate([rng.permutation(30) < 15 for _ in range(6)])
    spread = np.where(hit, labels, (labels + 1) % 8)
    ratio = accuracy_ci(spread, labels, actors).width / accuracy_ci(spread, labels).width
    assert 1.0 <= ratio < 1.7


def test_interval_contains_estimate_and_narrows_with_n():
    widths = []
    for n in (40, 160, 640):
        preds, labels = _preds_with_hits(int(0.7 * n), n)
        ci = accuracy_ci(preds, labels)
        assert ci.low <= ci.accuracy <= ci.high
        assert ci.n == n and ci.accuracy == pytest.approx(70.0)
        widths.append(ci.width)
    assert widths[0] > widths[1] > widths[2]
    # The width shrinks like 1/sqrt(n): x16 clips -> ~1/4 the width.
    assert widths[0] / widths[2] == pytest.approx(4.0, rel=0.3)
    # A wider interval for a smaller alpha.
    preds, labels = _preds_with_hits(112, 160)
    assert accuracy_ci(preds, labels, alpha=5).width > accuracy_ci(preds, labels, alpha=25).width


def test_deterministic_and_seeded():
    preds, labels = _preds_with_hits(100, 150)
    first = accuracy_ci(preds, labels, seed=3)
    ev._bootstrap_indices.cache_clear()  # recomputed, not merely cached
    assert accuracy_ci(preds, labels, seed=3) == first
    draws0 = ev.bootstrap_accuracies(preds, labels, seed=0)
    draws1 = ev.bootstrap_accuracies(preds, labels, seed=1)
    assert draws0.shape == (1000,) and not np.array_equal(draws0, draws1)
    # Different seeds use disjoint random states, yet describe the same distribution.
    assert abs(draws0.std() - draws1.std()) < 0.1 * draws0.std()


def test_accuracy_ci_rejects_bad_input():
    with pytest.raises(ValueError, match="differ in length"):
        accuracy_ci([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="one actor per clip"):
        accuracy_ci([0, 1], [0, 1], actors=[1])
    with pytest.raises(ValueError, match="alpha"):
        accuracy_ci([0, 1], [0, 1], alpha=0)
    with pytest.raises(ValueError, match="empty"):
        accuracy_ci([], [])


# ------------------------------------------------------------------------------------------------ predict

AudioOut = namedtuple("AudioOut", "logits embedding")


def _loader(n: int = 10, batch_size: int = 4):
    import torch
    from torch.utils.data import DataLoader

    g = torch.Generator().manual_seed(0)
    items = [{"waveform": torch.randn(2, 64000, generator=g), "video": torch.randn(3, 2, 8, 8, generator=g),
              "label": i % 8, "actor": 1 + i % 3, "clip_id": f"clip{i:02d}",
              "condition": "Lecture 1" if i < 6 else "Office 2"} for i in range(n)]
    return items, DataLoader(items, batch_size=batch_size, shuffle=False)


def _models():
    import torch
    from torch import nn

    class Audio(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64000, 8)
            self.drop = nn.Dropout(0.9)  # eval mode must switch it off

        def forward(self, waveforms):
            return AudioOut(self.lin(self.drop(waveforms.mean(1))), waveforms.mean((1, 2)))

    class Video(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3 * 2 * 8 * 8, 8)

        def forward(self, video):
            return self.lin(video.flatten(1))

    class Fused(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.v = Audio(), Video()

        def forward(self, waveforms, video):
            return AudioOut(self.a(waveforms).logits + self.v(video), None)

    torch.manual_seed(0)
    return Audio(), Video(), Fused()


def test_predict_calls_each_model_kind_with_its_inputs():
    import torch

    items, loader = _loader()
    audio, video, fused = _models()
    wav = torch.stack([it["waveform"] for it in items])
    vid = torch.stack([it["video"] for it in items])
    audio.train()
    for model, inputs, args in ((audio, ("waveform",), (wav,)), (video, ("video",), (vid,)),
                                (fused, ("waveform", "video"), (wav, vid))):
        pred = ev.predict(model, loader, inputs=inputs)
        model.eval()
        with torch.no_grad():
            out = model(*args)
        expected = (out if isinstance(out, torch.Tensor) else out.logits).numpy()
        np.testing.assert_allclose(pred.logits, expected, rtol=1e-5, atol=1e-6)
        assert pred.logits.dtype == np.float32 and pred.logits.shape == (10, 8)
        np.testing.assert_array_equal(pred.labels, np.arange(10) % 8)
        np.testing.assert_array_equal(pred.actors, 1 + np.arange(10) % 3)
        assert pred.clip_ids.tolist() == [f"clip{i:02d}" for i in range(10)]
        np.testing.assert_array_equal(pred.predicted, expected.argmax(1))
        assert set(pred.by_condition()) == {"Lecture 1", "Office 2"}
        assert len(pred.by_condition()["Office 2"]) == 4
    audio.train()
    ev.predict(audio, loader, inputs=("waveform",))
    assert audio.training  # mode restored


def test_predict_autocast_bf16_returns_float32_logits():
    _, loader = _loader(n=6)
    _, video, _ = _models()
    full = ev.predict(video, loader, inputs=("video",))
    half = ev.predict(video, loader, inputs=("video",), autocast="bf16")
    assert half.logits.dtype == np.float32
    assert not np.array_equal(half.logits, full.logits)  # it really ran in bfloat16
    np.testing.assert_allclose(half.logits, full.logits, atol=0.1)


def test_predict_errors_name_what_is_missing():
    import torch

    _, video, _ = _models()
    bad = [{"video": torch.zeros(2, 3, 2, 8, 8), "label": torch.tensor([0, 1])}]
    with pytest.raises(KeyError, match="'actor'.*'clip_id'.*'condition'"):
        ev.predict(video, bad, inputs=("video",))
    with pytest.raises(ValueError, match="pass inputs="):
        ev.predict(video, bad)
    with pytest.raises(ValueError, match="autocast"):
        ev.predict(video, bad, inputs=("video",), autocast="int8")
    # merlib's own classes are recognised by name; a model may also declare its inputs.
    assert ev._infer_inputs(type("MER", (), {})()) == ("waveform", "video")
    assert ev._infer_inputs(type("HTSAT", (), {})()) == ("waveform",)
    assert ev._infer_inputs(type("Custom", (), {"inputs": ("video",)})()) == ("video",)


@pytest.mark.gpu
def test_predict_on_cuda_with_bf16_matches_cpu():
    _, loader = _loader(n=8)
    _, _, fused = _models()
    cpu = ev.predict(fused, loader, inputs=("waveform", "video"))
    gpu = ev.predict(fused, loader, inputs=("waveform", "video"), device="cuda", autocast=torch_bf16())
    assert gpu.logits.dtype == np.float32
    np.testing.assert_allclose(gpu.logits, cpu.logits, atol=0.15)
    np.testing.assert_array_equal(gpu.labels, cpu.labels)


def torch_bf16():
    import torch

    return torch.bfloat16


# ------------------------------------------------------------------------------------------------ saving


def _fake_predictions(acc: float, room: str, n: int = N_TEST, actors: np.ndarray = ACTORS_3, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 8
    hit = rng.random(n) < acc
    logits = rng.normal(size=(n, 8)).astype(np.float32)
    target = np.where(hit, labels, (labels + 1 + rng.integers(0, 7, n)) % 8)
    logits[np.arange(n), target] += 10.0
    return Predictions(logits, labels, actors, [f"c{i}" for i in range(n)], [room] * n)


def test_save_load_roundtrip_and_filename_fallback(tmp_path):
    pred = _fake_predictions(0.6, "Lecture 1", n=20, actors=np.repeat([1, 2], 10))
    path = ev.save_predictions(pred, tmp_path, model="mer_sum_pe")
    assert path.name == "predictions_mer_sum_pe_lecture_1.npz"
    # a folder that does not exist yet is created when the model is named
    fresh = ev.save_predictions(pred, tmp_path / "new" / "preds", model="mer_sum_pe")
    assert fresh == tmp_path / "new" / "preds" / "predictions_mer_sum_pe_lecture_1.npz"
    model, back = ev.load_predictions(path)
    assert model == "mer_sum_pe" and back.condition == "Lecture 1"
    for field in ("logits", "labels", "actors", "clip_ids", "conditions"):
        np.testing.assert_array_equal(getattr(back, field), getattr(pred, field))
    # A file holding only the four arrays of the brief: model and room come from its name.
    np.savez(tmp_path / "predictions_audio_rev_sc_office_2.npz", logits=pred.logits, labels=pred.labels,
             actors=pred.actors, clip_ids=pred.clip_ids)
    loaded = ev.load_predictions_dir(tmp_path)
    assert set(loaded) == {"mer_sum_pe", "audio_rev_sc"}
    assert list(loaded["audio_rev_sc"]) == ["Office 2"]
    # The same model and room twice is refused, naming both files.
    ev.save_predictions(pred, tmp_path / "predictions_mer_sum_pe_again.npz", model="mer_sum_pe")
    with pytest.raises(ValueError, match="predictions_mer_sum_pe_again.npz"):
        ev.load_predictions_dir(tmp_path)


def test_predictions_validate_shapes_and_concat():
    a = _fake_predictions(0.5, "Lecture 1", n=8, actors=np.ones(8), seed=1)
    b = _fake_predictions(0.5, "Lobby", n=4, actors=np.ones(4), seed=2)
    both = Predictions.concat([a, b])
    assert len(both) == 12 and list(both.by_condition()) == ["Lecture 1", "Lobby"]
    with pytest.raises(ValueError, match="2 conditions"):
        both.condition
    with pytest.raises(ValueError, match="actors has shape"):
        Predictions(np.zeros((3, 8)), [0, 1, 2], [1, 2], ["a", "b", "c"], ["x"] * 3)


# ------------------------------------------------------------------------------------------------ tables


def test_room_names_match_ace_module():
    from merlib.data.ace import ACE_ROOMS, TEST_ROOM_NAMES

    assert pr.ROOM_NAMES == TEST_ROOM_NAMES
    assert [ev.room_name(r.key) for r in ACE_ROOMS] == list(TEST_ROOM_NAMES)
    assert {r.name: round(r.t60 * 1000) for r in ACE_ROOMS} == pr.ROOM_T60_MS
    assert ev.room_name("clean") == "clean"


def test_paper_table_is_complete_and_consistent():
    assert list(pr.TABLE_II) == list(pr.MODEL_NAMES)
    multiples = {_truncate(100 * k / 180) for k in range(181)}
    for model, rooms in pr.TABLE_II.items():
        assert list(rooms) == list(pr.ROOM_NAMES)
        for cell in rooms.values():
            assert cell.low < cell.accuracy < cell.high
            assert cell.accuracy in multiples  # 180 test clips, truncated to one decimal
    assert pr.TABLE_II["audio_avg_mel"]["Lobby"] == (63.3, 59.4, 67.22)
    assert pr.TABLE_II["mer_sum_pe"]["Meeting 1"] == (78.8, 75.5, 82.2)
    assert pr.TABLE_II["audio_clean_sc"]["Office 2"] == (47.7, 43.3, 52.2)
    assert pr.TABLE_I_CLEAN_MER.accuracy == 80.0
    assert pr.published("mer_clean_sc", "clean").accuracy == 80.0
    # The ranges docs/design.md §7 quotes.
    sum_pe = [c.accuracy for c in pr.TABLE_II["mer_sum_pe"].values()]
    assert (min(sum_pe), max(sum_pe)) == (75.5, 78.8)


def test_evaluate_rooms_orders_rooms_and_fills_both_intervals():
    results = {"office_2": _fake_predictions(0.5, "Office 2", seed=1),
               "clean": _fake_predictions(0.8, "clean", seed=2),
               "Lecture 1": _fake_predictions(0.7, "Lecture 1", seed=3)}
    df = ev.evaluate_rooms(results, num_bootstraps=300)
    assert df["room"].tolist() == ["Lecture 1", "Office 2", "clean"]
    assert list(df.columns) == ["room", "accuracy", "low", "high", "n", "actor_low", "actor_high", "n_actors"]
    assert (df["n"] == N_TEST).all() and (df["n_actors"] == 3).all()
    assert ((df["low"] <= df["accuracy"]) & (df["accuracy"] <= df["high"])).all()
    lec = results["Lecture 1"]
    assert df.loc[0, "accuracy"] == pytest.approx(lec.accuracy)
    assert df.loc[0, "actor_high"] == accuracy_ci(lec.predicted, lec.labels, lec.actors, num_bootstraps=300).high


def test_table2_layout_and_side_by_side():
    ours = {"mer_sum_pe": {"Lecture 1": AccuracyCI(77.777, 74.44, 81.11, 180)},
            "video": {"lobby": AccuracyCI(69.44, 65.55, 73.33, 180)}}
    t = ev.table2(ours)
    assert t.index.tolist() == list(pr.ROOM_NAMES) and t.index.name == "room"
    assert t.columns.tolist() == ["Video", "Audio clean-SC", "Audio rev-SC", "Audio Avg mel", "Audio Sum PE",
                                  "MER clean-SC", "MER rev-SC", "MER Avg mel", "MER Sum PE"]
    assert t.loc["Lecture 1", "MER Sum PE"] == "77.8 [74.4, 81.1]"
    assert t.loc["Lobby", "Video"] == "69.4 [65.5, 73.3]"
    assert t.loc["Lecture 2", "MER Sum PE"] == ev.MISSING
    side = ev.table2(ours, paper=True)
    assert side.columns[:3].tolist() == ["Video", "Video (paper)", "Audio clean-SC"]
    assert side.loc["Lobby", "Audio Avg mel (paper)"] == "63.3 [59.4, 67.22]"
    assert side.loc["Lecture 2", "Audio rev-SC (paper)"] == "55 [50.5, 59.4]"
    paper = ev.paper_table2()
    assert paper.shape == (7, 9) and paper.loc["Office 2", "MER Sum PE"] == "75.5 [71.6, 78.8]"

    cmp = ev.compare_with_paper(ours)
    row = cmp[cmp["model"] == "mer_sum_pe"].iloc[0]
    assert row["paper_accuracy"] == 78.3 and row["difference"] == pytest.approx(77.777 - 78.3)
    assert row["overlap"] == True  # noqa: E712 (a numpy bool in an object column)
    far = ev.compare_with_paper({"audio_clean_sc": {"Lecture 1": AccuracyCI(90.0, 88.0, 92.0, 180)}})
    assert far["overlap"].tolist() == [False]


def test_write_table_csv_and_markdown(tmp_path):
    t = ev.table2({"video": {"Lecture 1": AccuracyCI(50.0, 45.0, 55.0, 180)}}, paper=True)
    csv_path, md_path = ev.write_table(t, tmp_path, "table2", caption="Accuracy (%).")
    back = pd.read_csv(csv_path, index_col="room", keep_default_na=False)
    pd.testing.assert_frame_equal(back, t, check_dtype=False)
    md = md_path.read_text(encoding="utf-8").splitlines()
    assert md[0] == "Accuracy (%)."
    assert md[2].startswith("| room | Video | Video (paper) |")
    assert md[3].startswith("|---|---|---|")
    assert md[4].startswith("| Lecture 1 | 50.0 [45.0, 55.0] | 69.4 [65.5, 73.3] |")
    assert len(md) == 2 + 2 + 7


# ------------------------------------------------------------------------------------------------ confusion


def test_confusion_rows_in_percent_and_per_class_scores():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 0, 1, 1, 2, 2])
    logits = np.eye(8, dtype=np.float32)[predicted]
    pred = Predictions(logits, labels, np.ones(7), [str(i) for i in range(7)], ["x"] * 7)
    cm = ev.confusion(pred)
    assert cm.shape == (8, 8)
    np.testing.assert_allclose(cm[0, :2], [75.0, 25.0])
    np.testing.assert_allclose(cm[1, 1:3], [50.0, 50.0])
    np.testing.assert_allclose(np.nansum(cm, axis=1)[:3], 100.0)
    assert np.isnan(cm[3]).all()  # no "sad" clips: unknown, not 0 %
    m = ev.per_class_metrics(pred)
    assert m.index[:3].tolist() == ["neutral", "calm", "happy"]
    assert m.loc["neutral", "precision"] == pytest.approx(100.0)
    assert m.loc["neutral", "recall"] == pytest.approx(75.0)
    assert m.loc["calm", "precision"] == pytest.approx(50.0)
    assert m.loc["happy", "recall"] == pytest.approx(100.0)
    assert m["support"].tolist()[:4] == [4, 2, 1, 0]


# ------------------------------------------------------------------------------------------------ CLI


def test_merlib_evaluate_end_to_end(tmp_path, capsys):
    pred_dir = tmp_path / "preds"
    pred_dir.mkdir()
    truth: dict[str, dict[str, Predictions]] = {}
    for i, model in enumerate(pr.MODEL_NAMES):
        for j, room in enumerate(pr.ROOM_NAMES):
            p = _fake_predictions(0.4 + 0.05 * i, room, seed=10 * i + j)
            ev.save_predictions(p, pred_dir, model=model)
            truth.setdefault(model, {})[room] = p
    assert len(list(pred_dir.glob("predictions_*.npz"))) == 63

    parser = argparse.ArgumentParser(prog="merlib")
    ev.add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["evaluate", str(pred_dir), "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    assert "| room | Video |" in capsys.readouterr().out

    out = tmp_path / "out"
    for name in ("table2", "table2_actor", "table2_vs_paper", "per_room"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.md").is_file()
    table = pd.read_csv(out / "table2.csv", index_col="room")
    assert table.index.tolist() == list(pr.ROOM_NAMES) and table.shape == (7, 9)
    p = truth["mer_avg_mel"]["Meeting 2"]
    assert table.loc["Meeting 2", "MER Avg mel"] == accuracy_ci(p.predicted, p.labels).format()
    actor_table = pd.read_csv(out / "table2_actor.csv", index_col="room")
    assert actor_table.loc["Meeting 2", "MER Avg mel"] == accuracy_ci(p.predicted, p.labels, p.actors).format()
    per_room = pd.read_csv(out / "per_room.csv")
    assert len(per_room) == 63 and per_room["paper_accuracy"].notna().all()
    side = pd.read_csv(out / "table2_vs_paper.csv", index_col="room")
    assert side.loc["Lecture 1", "Video (paper)"] == "69.4 [65.5, 73.3]"

    with pytest.raises(FileNotFoundError, match="no predictions_"):
        ev.evaluate_predictions_dir(tmp_path / "out")


@pytest.mark.slow
def test_predict_rooms_runs_the_video_model_once(quick_corpus):
    from merlib.data.video import FrameSettings
    from merlib.datasets import MERDataModule, prepare_corpora
    from merlib.models.mer import build_model

    paths = prepare_corpora(quick_corpus, seed=0, frame_settings=FrameSettings.quick(), progress=False)
    torch.manual_seed(0)
    video = build_model("video", "quick")
    calls = []
    video.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    preds = ev.predict_rooms(video, "video", paths, clean=True)
    # one pass over the 48 test clips, whatever the number of conditions
    assert list(preds) == ["matched", *ev.ROOM_NAMES, "clean"] and sum(calls) == 48
    for room, p in preds.items():
        assert p.condition == room and len(p) == 48
        np.testing.assert_array_equal(p.logits, preds["Lecture 1"].logits)
    audio = build_model("audio_rev_sc", "quick")
    direct = ev.predict(audio, MERDataModule(paths, "audio_rev_sc", batch_size=16).loader("test", "Lobby"))
    np.testing.assert_allclose(ev.predict_rooms(audio, "audio_rev_sc", paths)["Lobby"].logits, direct.logits, atol=1e-6)
    with pytest.raises(ValueError, match="clean test set has one"):
        ev.predict_rooms(build_model("audio_sum_pe", "quick"), "audio_sum_pe", paths, clean=True)


# ------------------------------------------------------------------------------------------ paired differences


def _preds(correct: np.ndarray, actors: np.ndarray | None = None, order: np.ndarray | None = None,
           condition: str = "matched") -> "Predictions":
    """Predictions right exactly where ``correct`` is True (labels cycle through the 8 classes)."""
    from merlib.evaluation import Predictions

    n = len(correct)
    labels = np.arange(n) % 8
    predicted = np.where(correct, labels, (labels + 1) % 8)
    logits = np.eye(8, dtype=np.float32)[predicted]
    actors = np.repeat([1, 2, 3], n // 3) if actors is None else actors
    ids = np.array([f"clip{i:03d}" for i in range(n)])
    order = np.arange(n) if order is None else order
    return Predictions(logits[order], labels[order], actors[order], ids[order], np.full(n, condition))


def test_paired_difference_of_a_model_with_itself_is_zero():
    from merlib.evaluation import paired_difference

    rng = np.random.default_rng(0)
    a = _preds(rng.random(48) < 0.5)
    d = paired_difference(a, a)
    assert (d.difference, d.low, d.high, d.n) == (0.0, 0.0, 0.0, 48)
    assert d.p_not_better == 1.0 and d.verdict == "inconclusive"


def test_paired_interval_sees_what_overlapping_intervals_hide():
    """B is A with 4 more of 48 clips right (errors otherwise shared): the separate 75 % intervals overlap, but
    every resampled test set scores B at least as well, so the paired interval lies above zero."""
    from merlib.evaluation import accuracy_ci, paired_difference

    rng = np.random.default_rng(1)
    a_right = rng.random(48) < 0.45
    b_right = a_right.copy()
    b_right[np.flatnonzero(~a_right)[:4]] = True
    a, b = _preds(a_right), _preds(b_right)
    ci_a, ci_b = accuracy_ci(a.predicted, a.labels), accuracy_ci(b.predicted, b.labels)
    assert ci_b.low < ci_a.high  # the usual reading would call it a tie
    d = paired_difference(b, a)
    assert d.difference == pytest.approx(100 * 4 / 48)
    assert 0 < d.low <= d.difference <= d.high and d.verdict == "for" and d.p_not_better < 0.05
    per_actor = paired_difference(b, a, by="actor")
    assert per_actor.difference == d.difference and per_actor.high - per_actor.low >= d.high - d.low - 1e-9
    assert paired_difference(a, b).verdict == "against"


def test_paired_difference_matches_clips_by_id_and_refuses_other_clips():
    from merlib.evaluation import paired_difference

    rng = np.random.default_rng(2)
    right = rng.random(48) < 0.5
    a = _preds(right)
    shuffled = _preds(rng.random(48) < 0.5, order=rng.permutation(48))
    same_order = shuffled.subset(np.argsort(shuffled.clip_ids))
    assert paired_difference(a, shuffled) == paired_difference(a, same_order)
    with pytest.raises(ValueError, match="same clips"):
        paired_difference(a, a.subset(np.arange(40)))


def test_claims_table_rows_and_the_better_part():
    from merlib.evaluation import claims_table

    rng = np.random.default_rng(3)
    base = rng.random(48) < 0.3
    def better(p):  # base plus more right clips
        r = base.copy()
        r[np.flatnonzero(~base)[: int(p * 48)]] = True
        return r
    preds = {"audio_rev_sc": _preds(base), "audio_sum_pe": _preds(better(0.15)), "video": _preds(better(0.25)),
             "mer_sum_pe": _preds(better(0.4))}
    rooms = {m: {"matched": p, "Lecture 1": _preds(np.array(p.predicted == p.labels), condition="Lecture 1")}
             for m, p in preds.items()}
    table = claims_table(rooms)
    assert list(table.condition.unique()) == ["Lecture 1", "matched"]  # the paper's rooms first
    row = table[(table.claim == "fusion") & (table.condition == "matched")].iloc[0]
    assert row.model == "mer_sum_pe" and row.baseline == "video"  # video is the better part here
    assert row.difference == pytest.approx(100 * (int(0.4 * 48) - int(0.25 * 48)) / 48)
    mic = table[(table.claim == "multi-microphone") & (table.condition == "matched")]
    assert list(mic.model) == ["audio_sum_pe"] and mic.iloc[0].verdict == "for"


def test_top_class_share():
    one_class = _preds(np.zeros(48, dtype=bool))  # every clip predicted as (label + 1) % 8: spread evenly
    assert one_class.top_class_share == pytest.approx(1 / 8)
    from merlib.evaluation import Predictions

    logits = np.zeros((10, 8), dtype=np.float32)
    logits[:, 3] = 1  # always "sad"
    p = Predictions(logits, np.arange(10) % 8, np.ones(10), [f"c{i}" for i in range(10)], ["x"] * 10)
    assert p.top_class_share == 1.0
