from __future__ import annotations

import json

import pytest

from merlib.config import Config, load_config, preset, save_config


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
