"""merlib.config: a run's settings are one Config whose sections are the stages' own dataclasses, saved once
(config.yaml + config.json) and read back exactly; the commands and training runs save theirs that way."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from merlib.config import Config, from_dict, load_config, preset, save_config


def test_presets_differ_and_round_trip_through_yaml_and_json(tmp_path):
    quick, paper = preset("quick", seed=7), preset("paper")
    assert quick.synth.resolution == (320, 180) and paper.synth.resolution == (640, 360)
    assert quick.seed == 7 and quick.preset == "quick"
    path = save_config(quick, tmp_path)
    assert load_config(path) == quick
    assert load_config(tmp_path / "config.json") == quick
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 7


def test_overrides_and_typos():
    cfg = preset("quick", synth__resolution=(160, 90), data__root="/x")
    assert cfg.synth.resolution == (160, 90) and cfg.data.root == "/x"
    with pytest.raises(ValueError, match="no field 'synth__resolutoin'"):
        preset("quick", synth__resolutoin=(1, 1))
    with pytest.raises(ValueError, match="unknown preset"):
        preset("fast")  # type: ignore[arg-type]
    assert isinstance(Config(), Config)


# ------------------------------------------------------------------------------- one Config per run


def test_presets_fill_every_section_from_the_stages_own_presets():
    from merlib.data.reverberant import ReverbConfig
    from merlib.data.synthetic import CorpusSpec
    from merlib.data.video import FrameSettings
    from merlib.training import TrainConfig

    quick, paper = preset("quick", seed=7), preset("paper")
    assert quick.synth == CorpusSpec.preset("quick", 7) and paper.synth == CorpusSpec.preset("full", 0)
    assert quick.reverb == ReverbConfig(seed=7) and paper.reverb == ReverbConfig(seed=0)
    assert quick.train == TrainConfig.quick(seed=7) and paper.train == TrainConfig.paper()
    assert paper.frames == FrameSettings.paper()
    # the quick run's frames are the quick recipe's (face crops, lighter augmentation), not FrameSettings.quick()
    assert quick.frames == TrainConfig.quick().frame_settings() and quick.frames.face_crop
    assert {quick.synth.seed, quick.reverb.seed, quick.train.seed} == {7}  # the run's seed in every section
    assert preset("quick", model="video").train == TrainConfig.quick_for("video")
    assert quick.model is None and paper.data.root is None


def test_every_section_round_trips_exactly_through_yaml_and_json(tmp_path):
    cfg = preset("quick", seed=4, model="mer_avg_mel", data__root="/data/ravdess", split__test_actors=[1, 2],
                 synth__resolution=(160, 90), reverb__splits={"train": [3, 4], "val": [5], "test": [1, 2]},
                 reverb__ace_root="/data/ace", reverb__snr_db=15.5, train__lr_rate=(0.5, 0.25),
                 train__lr_scheduler_epoch=(3, 6), train__devices=2, train__precision="bf16-mixed",
                 train__limit_train_batches=0.25, train__lr=3e-5, frames__train_crop=48, frames__keep_aspect="crop")
    path = save_config(cfg, tmp_path)
    assert yaml.safe_load(path.read_text()) == json.loads((tmp_path / "config.json").read_text())  # same content
    for source in (path, tmp_path / "config.json", tmp_path):
        again = load_config(source)
        assert again == cfg and again.to_dict() == cfg.to_dict()
        assert again.train.lr_rate == (0.5, 0.25) and isinstance(again.train.lr_scheduler_epoch, tuple)
        assert again.synth.resolution == (160, 90) and isinstance(again.synth.resolution, tuple)
        assert again.train.lr == 3e-5 and again.reverb.splits["test"] == [1, 2] and again.frames.train_crop == 48


def test_a_stage_run_saves_nulls_for_the_rest_and_reading_it_back_stays_light(tmp_path):
    from merlib.config import DataConfig
    from merlib.data.synthetic import CorpusSpec

    cfg = Config(preset="quick", seed=1, data=DataConfig(root="/x"), synth=CorpusSpec.preset("quick", 1))
    save_config(cfg, tmp_path)
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert [k for k, v in saved.items() if v is None] == ["model", "reverb", "frames", "train"]
    assert load_config(tmp_path) == cfg
    heavy = "sorted(m for m in ('torch', 'lightning', 'torchvision') if m in sys.modules)"
    code = (f"import sys, merlib.config; print({heavy}); cfg = merlib.config.load_config(sys.argv[1]); "
            f"assert cfg.synth.n_actors == 16 and cfg.train is None; print({heavy})")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "[]"]


@pytest.mark.parametrize("section, key", [(None, "seeed"), ("train", "learning_rate"), ("reverb", "snr"),
                                          ("frames", "n_frame"), ("synth", "actors"), ("data", "roots")])
def test_unknown_keys_raise_naming_the_key(tmp_path, section, key):
    data = preset("quick").to_dict()
    if section is None:
        data[key] = 1
    else:
        data[section] = {**data[section], key: 1}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    where = "config has no field" if section is None else f"config section '{section}' has no field"
    with pytest.raises(ValueError, match=f"{where}.*{key}"):
        load_config(tmp_path / "config.yaml")
    with pytest.raises(ValueError, match=f"no field '{section or 'synth'}__{key}'"):
        preset("quick", **{f"{section or 'synth'}__{key}": 1})


def test_frames_follow_train_and_contradictions_are_refused(tmp_path):
    cfg = preset("quick", train__n_frames=8, train__frame_size=96)
    assert (cfg.frames.n_frames, cfg.frames.size, cfg.frames.face_crop) == (8, 96, True)
    with pytest.raises(ValueError, match="frames.size = 96 but train.frame_size = 64.*set train__frame_size"):
        preset("quick", frames__size=96)
    cfg = preset("paper")
    cfg.frames = dataclasses.replace(cfg.frames, rotation=0.0)
    with pytest.raises(ValueError, match="train__rotation"):
        save_config(cfg, tmp_path)
    with pytest.raises(ValueError, match="unknown model 'mer_sum'"):
        preset("paper", model="mer_sum")


def test_configs_saved_before_the_stage_sections_still_load():
    from merlib.data.synthetic import CorpusSpec

    old = {"preset": "quick", "seed": 2, "data": {"root": "/c", "cache_dir": "/cache", "sample_rate": 16000,
                                                   "speech_only": True},
           "synth": {"size": "quick", "resolution": [320, 180], "fps": 30},
           "split": {"train_actors": None, "val_actors": None, "test_actors": None}}
    cfg = from_dict(old)
    assert cfg.synth == CorpusSpec.preset("quick", 2) and cfg.train is None and cfg.data.cache_dir == "/cache"


def test_a_training_run_saves_one_config_and_run_folders_old_and_new_still_read(tmp_path):
    from merlib.data.reverberant import ReverbConfig
    from merlib.data.synthetic import CorpusSpec
    from merlib.datasets import CorpusPaths
    from merlib.errors import OutputError
    from merlib.training import TrainConfig, check_run_dir, find_runs, read_run_config, run_settings

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    spec = CorpusSpec.preset("quick", 5)
    (corpus / "merlib_synth.json").write_text(json.dumps({"spec": spec.to_dict()}))
    build = tmp_path / "cache" / "reverberant" / "reverb-abc"
    build.mkdir(parents=True)
    reverb = ReverbConfig(seed=5, splits={"train": [1, 2], "val": [3], "test": [4]})
    (build / "reverb_config.json").write_text(json.dumps({"config": reverb.to_dict(), "source": f"{corpus}|first2"}))
    train = TrainConfig.quick_for("mer_sum_pe", seed=5)

    cfg = run_settings("mer_sum_pe", train, CorpusPaths(build, None))
    assert (cfg.model, cfg.seed, cfg.preset, cfg.train) == ("mer_sum_pe", 5, "quick", train)
    assert cfg.reverb == reverb and cfg.synth == spec and cfg.frames == train.frame_settings()
    assert cfg.data.root == str(corpus) and cfg.data.cache_dir == str(tmp_path / "cache")
    audio = run_settings("audio_sum_pe", TrainConfig.paper(), build)  # a build folder works too
    assert audio.frames is None and audio.reverb == reverb and audio.preset == "paper"
    assert run_settings("video", train).reverb is None  # data that records nothing about itself

    runs = tmp_path / "runs"
    save_config(cfg, runs / "new")
    old = runs / "old"  # a run folder written before the settings were one Config
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"model": {"name": "video", "title": "Video"}, "seed": 0,
                                                 "train": TrainConfig.quick().to_dict(), "launch": {}}))
    for run in (runs / "new", old):
        (run / "final.pt").touch()
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "last.ckpt").touch()
    assert load_config(runs / "new") == cfg
    assert list(find_runs(runs).items()) == [("video", old), ("mer_sum_pe", runs / "new")]
    assert read_run_config(runs / "new") == train and read_run_config(old) == TrainConfig.quick()
    for run, name in ((runs / "new", "mer_sum_pe"), (old, "video")):
        assert check_run_dir(run, name, resume=True) == run
        with pytest.raises(OutputError, match=f"holds a run of '{name}', not 'audio_rev_sc'"):
            check_run_dir(run, "audio_rev_sc", resume=True)


def test_synth_and_reverb_commands_save_one_config(tmp_path, monkeypatch):
    import merlib.data.reverberant as reverberant
    import merlib.data.synthetic as synthetic
    from merlib.cli import _cmd_reverb, _cmd_synth
    from merlib.config import DataConfig
    from merlib.data.reverberant import ReverbConfig
    from merlib.data.synthetic import CorpusSpec

    def fake_generate(out_dir, spec, workers=None, progress=True):  # the corpus itself is tested elsewhere
        root = Path(out_dir)
        root.mkdir(parents=True)
        (root / "merlib_synth.json").write_text(json.dumps({"spec": spec.to_dict()}))
        return root

    def fake_build(data_root, out_root, cfg, workers=None, progress=True, max_clips_per_actor=None):
        out = Path(out_root) / "reverb-test"
        out.mkdir(parents=True)
        built = dataclasses.replace(cfg, splits={"train": [1, 2], "val": [3], "test": [4]})
        (out / reverberant.CONFIG_FILE).write_text(json.dumps({"config": built.to_dict(), "source": str(data_root)}))
        return out

    monkeypatch.setattr(synthetic, "generate_corpus", fake_generate)
    monkeypatch.setattr(reverberant, "build_reverberant_corpus", fake_build)
    monkeypatch.setattr(reverberant, "read_manifest", lambda out: [])
    corpus = tmp_path / "corpus"
    _cmd_synth(argparse.Namespace(out_dir=corpus, quick=True, size="full", seed=3, resolution=None, workers=1,
                                  no_progress=True))
    assert load_config(corpus / "merlib_run") == Config(preset="quick", seed=3, data=DataConfig(root=str(corpus)),
                                                        synth=CorpusSpec.preset("quick", 3))
    _cmd_reverb(argparse.Namespace(data_root=corpus, out=tmp_path / "rev", seed=3, snr_db=15.0, backend="merlib",
                                   ace_root=None, position=2, no_clean=False, max_clips_per_actor=None, workers=1,
                                   no_progress=True))
    saved = load_config(tmp_path / "rev" / "reverb-test" / "merlib_run")
    assert saved.reverb == ReverbConfig(seed=3, snr_db=15.0, ace_position=2,
                                        splits={"train": [1, 2], "val": [3], "test": [4]})
    assert saved.synth == CorpusSpec.preset("quick", 3) and saved.preset == "quick" and saved.seed == 3
    assert saved.train is None and saved.frames is None and saved.data.root == str(corpus.resolve())
