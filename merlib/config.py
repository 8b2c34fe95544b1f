"""Run configuration: one :class:`Config` per run, whose sections are the stages' own dataclasses.

A run's settings live in one record, :class:`Config`, saved beside what the run produced. Its top level holds
what the stages share — the preset it started from, the ``seed``, and the ``model`` a training run trains —
and each stage of the pipeline has a section, which is that stage's own dataclass:

==========  ==============================================  ================================================
section     class                                           the stage
==========  ==============================================  ================================================
``data``    :class:`DataConfig` (below)                     where the corpus and the caches are
``split``   :class:`SplitConfig` (below)                    the actor-independent split (docs/design.md §2)
``synth``   :class:`merlib.data.synthetic.CorpusSpec`       the built-in synthetic corpus (``merlib synth``)
``reverb``  :class:`merlib.data.reverberant.ReverbConfig`   the reverberant corpus (``merlib reverb``)
``frames``  :class:`merlib.data.video.FrameSettings`        the cached video frames and their augmentation
``train``   :class:`merlib.training.TrainConfig`            training (``merlib train``), model size included
==========  ==============================================  ================================================

The stages' named constructors stay the presets of their sections: :func:`preset` (``"paper"`` — the sizes of
Cohen, Hazan & Gannot, for a GPU and the real corpora — or ``"quick"``, a few-minute CPU run on the synthetic
corpus) fills every section from them, with the run's seed. The HTS-AT architecture is not a section of its
own: ``train.size`` names it (:meth:`~merlib.models.htsat.HTSATConfig.paper` or ``quick``, through
:func:`merlib.models.mer.build_model`). The ``frames`` of a run that trains are derived from ``train``'s frame
fields (``n_frames``, ``frame_size``, ``face_crop`` and the augmentation), and a config in which the two disagree
is refused.

:func:`save_config` writes the whole record once, as ``config.yaml`` and ``config.json`` (the same content).
Every section is written; a stage the run does not have is ``null`` — a ``merlib synth`` run saves ``data`` and
``synth`` and nulls for ``reverb``, ``frames`` and ``train``; an audio-only training run has ``frames: null``.
:func:`load_config` reads either file back into an equal :class:`Config` (tuples and nested values included);
an unknown key raises, naming it. Who saves one: ``merlib synth`` and ``merlib reverb`` (in
``<output>/merlib_run/``), the notebooks (in their ``OUT_DIR``), ``merlib reproduce`` (``outputs/config.yaml``)
and every training run (:func:`merlib.training.train`, in its run folder, next to ``run.json`` which records
what happened rather than what was asked: devices, data counts, versions, start time).

Importing this module is light (no torch): a stage's class is imported when a section of it is made or read,
so :func:`preset` and loading a config with ``train`` in it import the training stack.

Example::

    cfg = preset("quick", seed=3)
    cfg.synth.resolution              # (320, 180)
    cfg.train.max_epochs              # 24 (TrainConfig.quick())
    save_config(cfg, "outputs/run1")  # writes config.yaml and config.json
    load_config("outputs/run1/config.yaml") == cfg   # True
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

if TYPE_CHECKING:  # the stages' modules import torch; they are imported when a section is made or read
    from .data.reverberant import ReverbConfig
    from .data.synthetic import CorpusSpec
    from .data.video import FrameSettings
    from .training import TrainConfig

PresetName = Literal["paper", "quick"]

#: The stage sections and where their classes live (imported on use, see the module docstring).
STAGE_SECTIONS: dict[str, tuple[str, str]] = {
    "synth": ("merlib.data.synthetic", "CorpusSpec"),
    "reverb": ("merlib.data.reverberant", "ReverbConfig"),
    "frames": ("merlib.data.video", "FrameSettings"),
    "train": ("merlib.training", "TrainConfig"),
}

#: ``frames`` field → ``train`` field: what a training run's frames are made from (they must agree).
FRAME_FIELDS_OF_TRAIN: dict[str, str] = {"n_frames": "n_frames", "size": "frame_size", "face_crop": "face_crop",
                                         "hflip_p": "hflip_p", "vflip_p": "vflip_p", "rotation": "rotation"}


def default_cache_dir() -> Path:
    """Where merlib keeps derived data (decoded frames, reverberant corpora); ``$MERLIB_CACHE`` overrides."""
    return Path(os.environ.get("MERLIB_CACHE", Path.home() / ".cache" / "merlib"))


@dataclass
class SplitConfig:
    """Actor-independent split (docs/design.md §2). Explicit actor lists override the seeded default rule."""

    train_actors: list[int] | None = None
    val_actors: list[int] | None = None
    test_actors: list[int] | None = None


@dataclass
class DataConfig:
    """Where the corpus lives.

    ``root``: the RAVDESS-shaped corpus the run reads (the real one or a ``merlib synth`` output); None until a
    notebook or command knows it (and for a training run on a custom data module). ``cache_dir``: where the
    reverberant corpora and frame caches are built (:func:`default_cache_dir`).
    """

    root: str | None = None
    cache_dir: str = field(default_factory=lambda: str(default_cache_dir()))
    sample_rate: int = 16000
    speech_only: bool = True


@dataclass
class Config:
    """Everything a merlib run needs, one section per stage (see the module docstring).

    Attributes:
        preset: the preset the settings started from (informational: ``"paper"`` or ``"quick"``).
        seed: the run's seed; :func:`preset` gives it to every section that has one (corpus, rooms, training).
        model: the Table II model a training run trains (``"mer_sum_pe"`` …); None for a run that trains none.
        data, split: where the corpus is, and its actor split.
        synth, reverb, frames, train: the stages' own settings; None for a stage the run does not have.
    """

    preset: str = "paper"
    seed: int = 0
    model: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    synth: CorpusSpec | None = None
    split: SplitConfig = field(default_factory=SplitConfig)
    reverb: ReverbConfig | None = None
    frames: FrameSettings | None = None
    train: TrainConfig | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse settings that contradict each other: an unknown model, or frames other than those ``train``
        asks for (a training run makes its frames from ``train``'s fields; change them there)."""
        if self.model is not None:
            from .paper_results import MODEL_NAMES

            if self.model not in MODEL_NAMES:
                raise ValueError(f"config: unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}")
        if self.frames is not None and self.train is not None:
            bad = {f: (getattr(self.frames, f), getattr(self.train, t)) for f, t in FRAME_FIELDS_OF_TRAIN.items()
                   if getattr(self.frames, f) != getattr(self.train, t)}
            if bad:
                parts = ", ".join(f"frames.{f} = {a!r} but train.{FRAME_FIELDS_OF_TRAIN[f]} = {b!r}"
                                  for f, (a, b) in bad.items())
                raise ValueError(f"config: {parts}; a training run makes its frames from its train section — set "
                                 f"{', '.join('train__' + FRAME_FIELDS_OF_TRAIN[f] for f in bad)} instead")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists) for YAML and JSON; a section the run does not have is None."""
        return _plain(dataclasses.asdict(self))


def __getattr__(name: str) -> Any:
    # ``SynthConfig`` was this module's own synth section; the section is now the generator's CorpusSpec.
    if name == "SynthConfig":
        return section_class("synth")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def section_class(name: str) -> type:
    """The dataclass of section ``name`` (importing its stage's module for the stage sections)."""
    if name == "data":
        return DataConfig
    if name == "split":
        return SplitConfig
    if name not in STAGE_SECTIONS:
        raise ValueError(f"config has no section {name!r}")
    module, cls = STAGE_SECTIONS[name]
    return getattr(importlib.import_module(module), cls)


SECTIONS = ("data", "split", *STAGE_SECTIONS)


def _plain(obj: Any) -> Any:
    """Tuples become lists so YAML and JSON round-trip the same way."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def preset(name: PresetName = "paper", **overrides: Any) -> Config:
    """The named preset, every section filled from its stage's own preset, with fields overridden.

    ``synth``: :meth:`CorpusSpec.preset` (``"quick"`` or ``"full"``); ``reverb``: :class:`ReverbConfig`;
    ``train``: :meth:`TrainConfig.quick` (:meth:`TrainConfig.quick_for` when ``model`` is given) or
    :meth:`TrainConfig.paper`; ``frames``: ``train.frame_settings()`` (for ``"paper"`` that is
    :meth:`FrameSettings.paper`). The ``seed`` goes into every section that has one.

    Overrides are top-level fields (``seed=3``, ``model="video"``) or ``section__field`` keys
    (``synth__resolution=(160, 90)``, ``train__max_epochs=5``); the frames follow ``train__`` overrides.

    >>> preset("quick", seed=1, synth__resolution=(160, 90)).synth.resolution
    (160, 90)
    """
    if name not in ("paper", "quick"):
        raise ValueError(f"unknown preset {name!r}; choose 'paper' or 'quick'")
    top: dict[str, Any] = {}
    by_section: dict[str, dict[str, Any]] = {}
    names = {f.name for f in dataclasses.fields(Config)}
    for key, value in overrides.items():
        section, sep, attr = key.partition("__")
        if sep and section in SECTIONS:
            by_section.setdefault(section, {})[attr] = value
        elif not sep and key in names:
            top[key] = value
        else:
            raise ValueError(f"config has no field {key!r}")
    CorpusSpec, ReverbConfig, TrainConfig = (section_class(s) for s in ("synth", "reverb", "train"))
    seed = int(top.get("seed", 0))
    model = top.get("model")
    if name == "quick":
        train = TrainConfig.quick_for(model, seed=seed) if model else TrainConfig.quick(seed=seed)
    else:
        train = TrainConfig.paper(seed=seed)
    sections: dict[str, Any] = {"data": DataConfig(), "split": SplitConfig(),
                                "synth": CorpusSpec.preset("quick" if name == "quick" else "full", seed),
                                "reverb": ReverbConfig(seed=seed), "train": train}
    sections.update({k: v for k, v in top.items() if k in SECTIONS})
    # frames last: a training run makes its frames from the train section, overrides included
    for section in [s for s in SECTIONS if s != "frames"] + ["frames"]:
        if section == "frames" and "frames" not in top:
            trained = sections.get("train")
            sections["frames"] = (trained.frame_settings() if trained is not None
                                  else getattr(section_class("frames"), name)())
        values = by_section.get(section)
        if not values:
            continue
        target = sections.get(section)
        if target is None:
            raise ValueError(f"config section {section!r} is None; cannot set {', '.join(values)} in it")
        known = {f.name for f in dataclasses.fields(target)}
        for attr in values:
            if attr not in known:
                raise ValueError(f"config has no field {section + '__' + attr!r}")
        sections[section] = dataclasses.replace(target, **values)  # replace, so the section's own checks run
    rest = {k: v for k, v in top.items() if k not in SECTIONS}
    return Config(**{"preset": name, "seed": seed, **rest, **sections})


def _section_from_dict(key: str, value: dict[str, Any], whole: dict[str, Any]) -> Any:
    cls = section_class(key)
    bad = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
    if bad:
        raise ValueError(f"config section {key!r} has no field(s) {bad}")
    if key == "synth" and "n_actors" not in value:  # written when the synth section had only size/resolution/fps
        spec = cls.preset(value.get("size", "full"), int(whole.get("seed", 0)), value.get("resolution"))
        return dataclasses.replace(spec, fps=int(value.get("fps", spec.fps)))
    if hasattr(cls, "from_dict"):
        return cls.from_dict(value)
    return cls(**value)


def from_dict(data: dict[str, Any]) -> Config:
    """Inverse of :meth:`Config.to_dict`. Unknown keys raise, naming them, so typos do not pass silently; a
    missing section takes its default (configs written before a section existed still load)."""
    names = {f.name for f in dataclasses.fields(Config)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ValueError(f"config has no field {key!r}")
        if key in SECTIONS and value is not None:
            if not isinstance(value, dict):
                raise ValueError(f"config section {key!r} must be a mapping or null, not {value!r}")
            value = _section_from_dict(key, value, data)
        kwargs[key] = value
    return Config(**kwargs)


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename it: a reader never sees half a config."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_config(cfg: Config, out_dir: str | os.PathLike) -> Path:
    """Write ``config.yaml`` and ``config.json`` (the same content) into ``out_dir``; returns the YAML path."""
    cfg.check()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = cfg.to_dict()
    _write_atomic(out / "config.json", json.dumps(data, indent=2) + "\n")
    path = out / "config.yaml"
    _write_atomic(path, yaml.safe_dump(data, sort_keys=False))
    return path


def load_config(path: str | os.PathLike) -> Config:
    """Read a config written by :func:`save_config` (``config.yaml`` or ``config.json``, or their folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.yaml"
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds no merlib config (a mapping of settings); write one with save_config")
    return from_dict(data)


def read_synth_spec(data_root: str | os.PathLike | None) -> CorpusSpec | None:
    """The ``synth`` section of a corpus folder: the :class:`~merlib.data.synthetic.CorpusSpec` recorded in its
    ``merlib_synth.json`` when ``merlib synth`` made it; None for any other corpus (the real RAVDESS)."""
    from .data.ravdess import SYNTH_MARKER

    marker = Path(data_root) / SYNTH_MARKER if data_root else None
    if marker is None or not marker.is_file():
        return None
    spec = json.loads(marker.read_text()).get("spec")
    return section_class("synth").from_dict(spec) if isinstance(spec, dict) else None
