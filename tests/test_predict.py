"""`merlib predict`: your own recordings, any rate and length, through the same inputs the models trained on.

The files are written here in the real formats (wav, flac, mp4 with H.264 + AAC), the models are quick-size
networks saved in merlib's run-folder, Lightning and authors' formats. Each prediction is checked against the
model run directly on the input the training pipeline would have given it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from merlib.cli import main
from merlib.config import save_config
from merlib.data.ravdess import EMOTIONS
from merlib.data.media import read_audio, write_av
from merlib.data.video import load_clip_frames, normalize_frames
from merlib.errors import CheckpointError, ConfigError, DataError
from merlib.models.checkpoints import export_reference_state_dict
from merlib.models.mer import build_model, forward_logits
from merlib.predict import load_model, predict_file, predict_files, read_clip, results_to_csv, window_starts
from merlib.training import EmotionModule, TrainConfig, run_settings


def _speechy(seconds: float, sr: int, seed: int, channels: int = 1) -> np.ndarray:
    """(N, channels) float32: a few harmonic "syllables" with noise, different per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    out = []
    for c in range(channels):
        f0 = 120 + 40 * c + 30 * np.sin(2 * np.pi * 0.7 * t)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        x = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
        out.append(0.2 * x + 0.01 * rng.standard_normal(len(t)))
    return np.stack(out, axis=1).astype(np.float32)


def _save_run(root: Path, name: str, seed: int) -> Path:
    torch.manual_seed(seed)
    run = root / name
    run.mkdir(parents=True)
    model = build_model(name, "quick")
    torch.save(model.state_dict(), run / "final.pt")
    save_config(run_settings(name, TrainConfig.quick_for(name)), run)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {name: _save_run(root, name, seed) for seed, name in
            enumerate(["audio_rev_sc", "audio_sum_pe", "video", "mer_rev_sc"])}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    out = {}
    stereo = _speechy(10.0, 48000, 0, channels=2)
    out["stereo48k"] = d / "stereo_48k_10s.wav"
    sf.write(out["stereo48k"], stereo, 48000)
    out["left48k"] = d / "left_48k_10s.wav"  # channel 1 of the stereo file alone
    sf.write(out["left48k"], stereo[:, 0], 48000)
    out["mono8k"] = d / "mono_8k_1.5s.wav"
    sf.write(out["mono8k"], _speechy(1.5, 8000, 1)[:, 0], 8000)
    three = _speechy(6.0, 16000, 2, channels=3)
    out["three16k"] = d / "three_mics_16k.flac"
    sf.write(out["three16k"], three, 16000)
    out["three16k_swapped"] = d / "three_mics_swapped.flac"
    sf.write(out["three16k_swapped"], three[:, [2, 1, 0]], 16000)
    out["mp3"] = d / "voice_44k.mp3"
    sf.write(out["mp3"], _speechy(6.5, 44100, 5)[:, 0], 44100, format="MP3")
    rng = np.random.default_rng(3)
    frames = np.zeros((75, 96, 128, 3), np.uint8)  # 3 s at 25 fps: a bright square moving over a dark room
    for i in range(75):
        frames[i] = rng.integers(0, 40, (96, 128, 3), dtype=np.uint8)
        frames[i, 20:70, i : i + 50] = (200, 160, 120)
    out["mp4"] = d / "01-01-03-01-01-01-12.mp4"
    write_av(out["mp4"], frames, 25, audio=_speechy(3.0, 48000, 4)[:, 0], sample_rate=48000)
    # bad files
    out["empty"] = d / "empty.wav"
    out["empty"].write_bytes(b"")
    out["truncated"] = d / "truncated.flac"
    out["truncated"].write_bytes(out["three16k"].read_bytes()[:30])
    out["text"] = d / "notes.wav"
    out["text"].write_text("this is not a recording\n")
    out["folder"] = d / "a_folder"
    out["folder"].mkdir()
    out["truncated_mp4"] = d / "truncated.mp4"
    out["truncated_mp4"].write_bytes(out["mp4"].read_bytes()[:2000])
    return out


def _direct(model, name: str, waveform: np.ndarray | None = None, video: torch.Tensor | None = None) -> np.ndarray:
    """Softmax of the model on one training-shaped input: (C, 64000) audio and/or (3, T, H, W) frames."""
    batch = {}
    if waveform is not None:
        w = np.zeros((waveform.shape[0], 64000), np.float32)
        w[:, : min(64000, waveform.shape[1])] = waveform[:, :64000]
        batch["waveform"] = torch.from_numpy(w)[None]
    if video is not None:
        batch["video"] = video[None]
    with torch.inference_mode():
        return torch.softmax(forward_logits(model, name, batch), -1)[0].numpy()


def test_windows_cover_the_clip():
    assert window_starts(1.5) == [0.0]
    assert window_starts(4.0) == [0.0]
    assert window_starts(10.0) == [0.0, 2.0, 4.0, 6.0]  # the last window ends exactly at 10 s
    assert window_starts(10.5) == [0.0, 2.0, 4.0, 6.0, 8.0]  # runs 1.5 s past the end: padded
    assert window_starts(10.0, hop_s=4.0) == [0.0, 4.0, 8.0]
    for d in (4.01, 7.3, 60.0):
        s = window_starts(d, hop_s=1.5)
        assert s[-1] + 4.0 >= d > s[-1] + 4.0 - 1.5  # reaches the end, padded by less than one hop
    with pytest.raises(ConfigError, match="hop"):
        window_starts(10.0, hop_s=0)


def test_stereo_48k_10s_single_channel_model_reads_channel_1(runs, files):
    loaded = load_model(runs["audio_rev_sc"])
    r = predict_file(files["stereo48k"], loaded)
    assert (r.sample_rate, r.channels, len(r.starts)) == (48000, 2, 4)
    assert r.window_probs.shape == (4, 8) and np.allclose(r.window_probs.sum(1), 1, atol=1e-5)
    assert np.allclose(r.probs, r.window_probs.mean(0)) and r.label == r.classes[int(r.probs.argmax())]
    # channel 1 alone gives the same answer: the second channel is not read
    left = predict_file(files["left48k"], loaded)
    np.testing.assert_allclose(left.window_probs, r.window_probs, atol=1e-6)
    # each window is the model on the resampled signal at that offset
    x16 = resample_poly(sf.read(files["stereo48k"], dtype="float32")[0][:, 0], 1, 3).astype(np.float32)[None]
    for k, start in enumerate(r.starts):
        a = int(start * 16000)
        np.testing.assert_allclose(r.window_probs[k], _direct(loaded.model, "audio_rev_sc", x16[:, a:]), atol=2e-5)


def test_8k_mono_1_5s_is_one_padded_window(runs, files):
    loaded = load_model(runs["audio_rev_sc"])
    r = predict_file(files["mono8k"], loaded)
    assert r.starts == [0.0] and abs(r.duration_s - 1.5) < 1e-3 and r.sample_rate == 8000
    x16 = resample_poly(sf.read(files["mono8k"], dtype="float32")[0], 2, 1).astype(np.float32)[None]
    np.testing.assert_allclose(r.window_probs[0], _direct(loaded.model, "audio_rev_sc", x16), atol=2e-5)


def test_mp3_at_44_1k(runs, files):
    r = predict_file(files["mp3"], load_model(runs["audio_rev_sc"]))
    assert r.sample_rate == 44100 and abs(r.duration_s - 6.5) < 0.1 and r.starts == [0.0, 2.0, 4.0]


def test_three_channel_flac_feeds_sum_pe_in_the_array_order(runs, files):
    loaded = load_model(runs["audio_sum_pe"])
    r = predict_file(files["three16k"], loaded, hop_s=1.0)
    assert r.starts == [0.0, 1.0, 2.0] and r.channels == 3
    x = sf.read(files["three16k"], dtype="float32")[0].T
    for k, start in enumerate(r.starts):
        np.testing.assert_allclose(r.window_probs[k], _direct(loaded.model, "audio_sum_pe", x[:, int(start * 16000):]),
                                   atol=2e-5)
    # microphones 1, 2, 3 in the file's channel order (Sum PE's sum is symmetric, but its per-microphone bn0 is not)
    np.testing.assert_array_equal(read_clip(files["three16k_swapped"], "audio_sum_pe").waveform, x[[2, 1, 0]])


def test_three_microphone_model_refuses_other_channel_counts(runs, files):
    loaded = load_model(runs["audio_sum_pe"])
    for key, n in (("stereo48k", 2), ("mono8k", 1)):
        with pytest.raises(DataError, match=rf"has {n} channel\(s\).*3 microphones.*audio_rev_sc"):
            read_clip(files[key], loaded.spec)


def test_mp4_audio_and_video_through_the_frame_pipeline(runs, files):
    video = load_model(runs["video"])
    r = predict_file(files["mp4"], video)
    assert r.starts == [0.0] and abs(r.duration_s - 3.0) < 0.05
    # a clip no longer than a window gets exactly the frames the frame cache would hold for it
    frames = normalize_frames(load_clip_frames(files["mp4"], video.frames).frames)
    np.testing.assert_allclose(r.window_probs[0], _direct(video.model, "video", video=frames), atol=1e-5)

    mer = load_model(runs["mer_rev_sc"])
    m = predict_file(files["mp4"], mer)
    audio = read_audio(files["mp4"], 16000)[None]  # the corpus builder's decoding of an mp4's audio track
    assert abs(audio.shape[1] / 16000 - 3.0) < 0.05
    np.testing.assert_allclose(m.window_probs[0], _direct(mer.model, "mer_rev_sc", audio, frames), atol=1e-5)
    assert predict_file(files["mp4"], load_model(runs["audio_rev_sc"])).starts == [0.0]  # an mp4's audio track


def test_mer_and_video_models_refuse_audio_only_files(runs, files):
    for name in ("mer_rev_sc", "video"):
        with pytest.raises(DataError, match="holds no video.*mp4"):
            read_clip(files["mono8k"], name)


def test_bad_files_get_a_reason_and_the_good_ones_a_result(runs, files):
    loaded = load_model(runs["audio_rev_sc"])
    bad = ["empty", "truncated", "text", "folder", "truncated_mp4"]
    results = predict_files([files["mono8k"], *[files[k] for k in bad], files["mono8k"].with_name("missing.wav")],
                            loaded)
    assert results[0].ok and results[0].label
    for r in results[1:]:
        assert not r.ok and str(r.path.name) in r.error, r.error
    reasons = {r.path.name: r.error for r in results[1:]}
    assert "empty" in reasons["empty.wav"]
    assert "folder" in reasons["a_folder"]
    assert "missing.wav" in reasons and "check the path" in reasons["missing.wav"]
    for name in ("truncated.flac", "notes.wav", "truncated.mp4"):
        assert "decode" in reasons[name] or "truncated" in reasons[name], reasons[name]


def test_cli_table_json_csv_and_exit_codes(runs, files, tmp_path, capsys):
    good = [str(files["stereo48k"]), str(files["mono8k"]), str(files["mp4"])]
    out_json, out_csv = tmp_path / "p.json", tmp_path / "p.csv"
    code = main(["predict", *good, "--model", str(runs["audio_rev_sc"]), "--json", str(out_json),
                 "--csv", str(out_csv), "--no-progress"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    table = printed.out.splitlines()
    assert table[0].split()[:4] == ["file", "length", "windows", "emotion"] and len(table) == 2 + len(good)
    assert "10.0 s" in table[2] and table[2].split()[4] in EMOTIONS
    data = json.loads(out_json.read_text())
    assert data["model"]["name"] == "audio_rev_sc" and data["hop_s"] == 2.0
    first = data["files"][0]
    assert len(first["windows"]) == 4 and abs(sum(first["probabilities"].values()) - 1) < 1e-4
    assert first["windows"][3] == {**first["windows"][3], "start_s": 6.0, "end_s": 10.0}
    rows = out_csv.read_text().splitlines()
    assert rows[0].startswith("file,window,start_s,end_s,prediction,p_neutral") and len(rows) == 1 + 3 + (4 + 1 + 1)

    # a bad file among good ones: the good ones are reported, the bad one named, exit 1, no traceback
    code = main(["predict", str(files["mono8k"]), str(files["text"]), "--model", str(runs["audio_rev_sc"]),
                 "--json", "-", "--no-progress"])
    printed = capsys.readouterr()
    assert code == 1 and "Traceback" not in printed.err
    assert f"error: cannot decode audio file {files['text']}" in printed.err and "1 of 2 file(s)" in printed.err
    assert [f["ok"] for f in json.loads(printed.out)["files"]] == [True, False]
    # a MER model given audio only: exit 1 with the reason
    code = main(["predict", str(files["mono8k"]), "--model", str(runs["mer_rev_sc"]), "--no-progress"])
    assert code == 1 and "holds no video" in capsys.readouterr().err
    if not torch.cuda.is_available():  # a GPU asked for where there is none: exit 2, one line
        assert main(["predict", str(files["mono8k"]), "--model", str(runs["audio_rev_sc"]), "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
    # a model that cannot be loaded: exit 2, one line
    code = main(["predict", str(files["mono8k"]), "--model", str(files["text"]), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("merlib predict: error:") and "not a PyTorch checkpoint" in err


def test_model_sources_run_folder_final_pt_lightning_and_authors(runs, files, tmp_path):
    clip = files["three16k"]
    reference = predict_file(clip, load_model(runs["audio_sum_pe"]))
    # final.pt inside its run folder: the folder's config.json names the model
    inside = load_model(runs["audio_sum_pe"] / "final.pt")
    assert inside.spec.name == "audio_sum_pe" and inside.size == "quick"
    # final.pt copied out of its folder: the model must be named, and the size is found from the weights
    alone = tmp_path / "weights.pt"
    shutil.copy(runs["audio_sum_pe"] / "final.pt", alone)
    with pytest.raises(ConfigError, match="--model-name"):
        load_model(alone)
    named = load_model(alone, model_name="audio_sum_pe")
    assert named.size == "quick"
    np.testing.assert_allclose(predict_file(clip, named).window_probs, reference.window_probs, atol=1e-6)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(alone, model_name="mer_sum_pe")  # (Avg mel would load: its weights are the same tensors)
    with pytest.raises(ConfigError, match="is a 'audio_sum_pe' model"):
        load_model(runs["audio_sum_pe"], model_name="audio_rev_sc")

    # the authors' layout (sed_model.* keys in a Lightning-style file): the file cannot say which model it is
    authors = tmp_path / "authors_sum_pe.ckpt"
    torch.save({"state_dict": export_reference_state_dict(inside.model), "epoch": 3}, authors)
    with pytest.raises(ConfigError, match="--model-name"):
        load_model(authors)
    theirs = load_model(authors, model_name="audio_sum_pe")
    assert theirs.how == "authors' checkpoint"
    np.testing.assert_allclose(predict_file(clip, theirs).window_probs, reference.window_probs, atol=1e-5)


def test_lightning_checkpoint_loads_by_itself(files, tmp_path):
    import lightning as L

    torch.manual_seed(0)
    cfg = TrainConfig.quick_for("audio_rev_sc")
    module = EmotionModule(build_model("audio_rev_sc", "quick"), "audio_rev_sc", cfg)
    items = [{"waveform": torch.randn(1, 64000) * 0.1, "label": k} for k in range(2)]
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(items, batch_size=2))
    ckpt = tmp_path / "elsewhere" / "epoch000-acc0.5000.ckpt"
    ckpt.parent.mkdir()
    trainer.save_checkpoint(ckpt)
    loaded = load_model(ckpt)  # no run folder beside it: the checkpoint names its model and recipe
    assert (loaded.spec.name, loaded.size, loaded.how) == ("audio_rev_sc", "quick", "merlib Lightning checkpoint")
    x = sf.read(files["mono8k"], dtype="float32")[0]
    got = predict_file(files["mono8k"], loaded).window_probs[0]
    module.model.eval()
    np.testing.assert_allclose(got, _direct(module.model, "audio_rev_sc", resample_poly(x, 2, 1)[None]), atol=2e-5)


def test_csv_marks_failed_files(runs, files):
    loaded = load_model(runs["audio_rev_sc"])
    text = results_to_csv(predict_files([files["empty"]], loaded))
    assert text.splitlines()[1].endswith("(0 bytes): a copy or recording that did not finish")


def test_window_probability_figure(runs, files):
    from merlib.analysis import plot_window_probabilities

    r = predict_file(files["stereo48k"], load_model(runs["audio_rev_sc"]), hop_s=1.0)
    fig = plot_window_probabilities(r, [(0.0, 5.0, "happy"), (5.0, 10.0, "sad")])
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in r.classes]
    assert len(lines) == 8 and all(len(line.get_xdata()) == len(r.starts) == 7 for line in lines)
    assert np.allclose(lines[0].get_xdata(), np.asarray(r.starts) + 2.0)  # at the window centres
    assert r.label in ax.get_title()
    failed = predict_files([files["empty"]], load_model(runs["audio_rev_sc"]))[0]
    with pytest.raises(ValueError, match="no windows"):
        plot_window_probabilities(failed)
