"""Run configuration: plain dataclasses with named presets, saved beside every run's outputs.

Two presets exist: ``"paper"`` (the sizes of Cohen, Hazan & Gannot, for a GPU and the real corpora) and
``"quick"`` (a few-minute CPU run on the built-in synthetic corpus). Every stage of merlib takes its
settings from one :class:`Config`, and every run writes the resolved config (seed included) next to what
it produced with :func:`save_config`, so a result can always be traced back to the settings that made it.

Example::

    cfg = preset("quick", seed=3)
    cfg.synth.resolution            # (320, 180)
    save_config(cfg, "outputs/run1")  # writes config.yaml and config.json
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

PresetName = Literal["paper", "quick"]


def default_cache_dir() -> Path:
    """Where merlib keeps derived data (decoded frames, reverberant corpora); ``$MERLIB_CACHE`` overrides."""
    return Path(os.environ.get("MERLIB_CACHE", Path.home() / ".cache" / "merlib"))


@dataclass
class SynthConfig:
    """The built-in synthetic RAVDESS (``merlib synth``): see :mod:`merlib.data.synthetic`."""

    size: Literal["quick", "full"] = "full"
    resolution: tuple[int, int] = (640, 360)  # width, height; RAVDESS itself is 1280x720
    fps: int = 30


@dataclass
class SplitConfig:
    """Actor-independent split (docs/design.md §2). Explicit actor lists override the seeded default rule."""

    train_actors: list[int] | None = None
    val_actors: list[int] | None = None
    test_actors: list[int] | None = None


@dataclass
class DataConfig:
    """Where the corpus lives. ``root=None`` means the built-in synthetic corpus under ``out_dir``."""

    root: str | None = None
    cache_dir: str = field(default_factory=lambda: str(default_cache_dir()))
    sample_rate: int = 16000
    speech_only: bool = True


@dataclass
class Config:
    """Everything a merlib run needs. ``preset`` is informational; ``seed`` drives every random choice."""

    preset: str = "paper"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    split: SplitConfig = field(default_factory=SplitConfig)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(obj: Any) -> Any:
    """Tuples become lists so YAML and JSON round-trip the same way."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def preset(name: PresetName = "paper", **overrides: Any) -> Config:
    """Return the named preset, with top-level fields or ``section__field`` keys overridden.

    >>> preset("quick", seed=1, synth__resolution=(160, 90)).synth.resolution
    (160, 90)
    """
    if name == "paper":
        cfg = Config(preset="paper")
    elif name == "quick":
        cfg = Config(preset="quick", synth=SynthConfig(size="quick", resolution=(320, 180)))
    else:
        raise ValueError(f"unknown preset {name!r}; choose 'paper' or 'quick'")
    for key, value in overrides.items():
        section, _, attr = key.partition("__")
        target = getattr(cfg, section) if attr else cfg
        attr = attr or section
        if not hasattr(target, attr):
            raise ValueError(f"config has no field {key!r}")
        setattr(target, attr, value)
    return cfg


def from_dict(data: dict[str, Any]) -> Config:
    """Inverse of :meth:`Config.to_dict` (unknown keys raise, so typos do not pass silently)."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in sections:
            raise ValueError(f"config has no field {key!r}")
        ftype = sections[key].default_factory if isinstance(value, dict) else None  # type: ignore[misc]
        if isinstance(value, dict) and ftype is not None:
            cls = type(ftype())
            known = {f.name for f in dataclasses.fields(cls)}
            bad = set(value) - known
            if bad:
                raise ValueError(f"config section {key!r} has no field(s) {sorted(bad)}")
            value = cls(**{k: tuple(v) if k == "resolution" else v for k, v in value.items()})
        kwargs[key] = value
    return Config(**kwargs)


def save_config(cfg: Config, out_dir: str | os.PathLike) -> Path:
    """Write ``config.yaml`` and ``config.json`` into ``out_dir``; returns the YAML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = cfg.to_dict()
    (out / "config.json").write_text(json.dumps(data, indent=2) + "\n")
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_config(path: str | os.PathLike) -> Config:
    """Read a config written by :func:`save_config` (YAML or JSON)."""
    text = Path(path).read_text()
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    return from_dict(data)
