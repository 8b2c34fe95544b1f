"""The acoustic lab: change the room, move the phone, switch microphones off — hear it and watch the models.

Notebook: 07_tsne_and_confusion.ipynb

:class:`AcousticLab` is an ipywidgets panel. Choose a clip, a shoebox room (length, width, height, T60), the
source–array distance and how many of the phone's three microphones are on; each change re-simulates the
room (:func:`merlib.acoustics.simulate_scene`), reverberates the clean clip with AR(1) noise at 20 dB
(:func:`merlib.acoustics.reverberate`), plays microphone 1, draws the RIRs and the log-mels, and shows each
trained model's class probabilities for exactly that signal.

Your own sound: the upload button takes a .wav, .flac, .mp3, .ogg or .mp4 file and makes it the clip — decoded,
mixed to mono, resampled to 16 kHz, its first 4 s kept and a shorter one zero-padded, as the corpus' clips are
(:func:`load_clip`). It joins the clip chooser under its file name and is selected, so the room is simulated
again and every model runs on it. Its emotion is unknown (the probabilities show no true class), and it has no
face video, so the models that read video are not run on it. A file that cannot be used (empty, not audio,
truncated, silent) is reported in the status line and the previous clip stays. :meth:`AcousticLab.add_clip_file`
does the same without the button (tests, scripts, a notebook cell).

Layout: the control column keeps its width, so labels and readouts are never cut; the status line and the players
take the rest of the row, and the status text wraps inside it. On a page too narrow for both, the right-hand
column moves below the controls, and the figures shrink to the page's width.

Headless runs (papermill, CI) build the panel without a browser; tests drive it by setting a control's
``value`` — the callbacks run synchronously — and read :attr:`AcousticLab.result`. The panel uses ``Image``,
``Audio`` and ``HTML`` widgets updated in place, never an ``Output`` widget, because capturing output into an
``Output`` widget can hang a headless notebook run (jupyter/nbclient#312).

Geometry (:func:`lab_scene`): the loudspeaker stands at a third of the room's length, mid-width, 1.75 m high
(as the paper's training source); the phone lies flat at 1.6 m, ``distance`` metres away from it towards the
far wall (other directions are tried if the phone would leave the room), its long axis along x.
"""

from __future__ import annotations

import dataclasses
import html
import io
import math
import os
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from matplotlib.figure import Figure
from torch import nn

from .acoustics import (
    MOBILE_GEOMETRY,
    Scene,
    beta_from_t60,
    critical_distance,
    mics_clear_of_walls,
    place_array,
    reverberate,
    simulate_scene,
)
from .analysis import EMOTION_COLOURS, EvalClip
from .cpu import tune_allocator
from .data.media import AV_AUDIO_SUFFIXES, read_audio, resample
from .datasets import CLIP_SAMPLES
from .errors import MediaError, MerlibError
from .evaluation import class_names
from .features import LogMel
from .models.mer import MER, audio_branch, forward_logits, get_spec
from .paper_results import MODEL_LABELS

__all__ = ["LabSettings", "LabResult", "lab_scene", "load_clip", "AcousticLab", "AUDIO_FILE_TYPES"]

SOURCE_HEIGHT = 1.75  # m, the paper's training source height
MIC_HEIGHT = 1.6  # m, the paper's microphone height
WALL_MARGIN = 0.1  # m, microphones at least this far from the walls (as the paper sampler)

#: The files the upload button offers (:func:`load_clip` reads each).
AUDIO_FILE_TYPES = ".wav,.flac,.mp3,.ogg,.mp4"
#: The control column: labels as wide as the longest one ("source–phone (m)") in JupyterLab's 13 px widget font,
#: with room to spare; the column as wide as a label and a corpus clip's name in the chooser (a slider and its
#: readout need less).
LABEL_WIDTH = "140px"
CONTROL_WIDTH = "460px"
#: The status line's text wraps inside its box instead of running past the page's edge.
_WRAP = "white-space: normal; overflow-wrap: anywhere; line-height: 1.45"


@dataclass
class LabSettings:
    """One setting of the lab's controls."""

    clip: int = 0
    length: float = 6.0
    width: float = 4.5
    height: float = 2.9
    t60: float = 0.6
    distance: float = 1.0
    num_mics: int = 3


@dataclass
class LabResult:
    """What one update of the lab computed.

    Attributes:
        settings: the controls' values.
        scene: the simulated room (None when the settings were impossible).
        rirs: (C, L) RIRs of the microphones that are on.
        reverberant: (C, N) the signals those microphones recorded.
        probabilities: ``{model name: (K,) softmax}`` for each model that ran.
        not_run: the models that read video, when the clip has no frames (a sound of your own).
        audio_wav, clean_wav: microphone 1 and the clean clip as 16-bit wav bytes.
        figure_png, probabilities_png: the two figures as PNG bytes.
        error: why the settings could not be simulated (the panel then keeps the previous sound and figures).
    """

    settings: LabSettings
    scene: Scene | None = None
    rirs: np.ndarray | None = None
    reverberant: np.ndarray | None = None
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    not_run: list[str] = field(default_factory=list)
    audio_wav: bytes = b""
    clean_wav: bytes = b""
    figure_png: bytes = b""
    probabilities_png: bytes = b""
    error: str | None = None


def lab_scene(length: float, width: float, height: float, t60: float, distance: float, fs: int = 16000) -> Scene:
    """The lab's room (module docstring): a shoebox with Sabine walls for ``t60``, the source at (L/3, W/2,
    1.75 m) and the phone ``distance`` m away at 1.6 m. ``ValueError`` with the reason when it cannot be built."""
    room = np.array([length, width, height], dtype=np.float64)
    if np.any(room <= 0.5) or height <= SOURCE_HEIGHT + 0.1:
        raise ValueError(f"the room {length:g} × {width:g} × {height:g} m is too small: the source stands at "
                         f"{SOURCE_HEIGHT} m and needs some space around it")
    beta = beta_from_t60(room, t60)  # raises when T60 is unreachable for this room
    src = np.array([length / 3.0, width / 2.0, SOURCE_HEIGHT])
    dz = SOURCE_HEIGHT - MIC_HEIGHT
    if distance <= dz:
        raise ValueError(f"distance {distance:g} m must exceed the {dz:g} m height difference of source and phone")
    dh = math.sqrt(distance**2 - dz**2)
    for azimuth in np.deg2rad([0, 30, -30, 60, -60, 90, -90, 135, -135, 180]):
        center = src + np.array([dh * math.cos(azimuth), dh * math.sin(azimuth), -dz])
        mics = place_array(MOBILE_GEOMETRY, center, 0.0)
        if mics_clear_of_walls(mics, room, WALL_MARGIN):
            return Scene(room_dim=room, t60=float(t60), src=src, mics=mics, distance=float(distance),
                         critical_distance=critical_distance(float(np.prod(room)), float(t60)), beta=beta,
                         yaw=0.0, array_center=center, fs=fs, name="acoustic lab")
    raise ValueError(f"a phone {distance:g} m from the source does not fit in a {length:g} × {width:g} m room; "
                     "shorten the distance or enlarge the room")


def load_clip(
    source: str | os.PathLike | bytes | bytearray | memoryview,
    name: str | None = None,
    clip_samples: int = CLIP_SAMPLES,
    fs: int = 16000,
) -> EvalClip:
    """A sound file of your own as a lab clip, prepared as the corpus' clips are.

    Decoded (wav, flac, mp3 and ogg with soundfile; the audio track of an mp4 with PyAV), the channels averaged,
    resampled to ``fs``, the first ``clip_samples`` (4 s) kept and a shorter sound zero-padded to that length.
    Its emotion and actor are unknown (None) and it has no frames.

    Args:
        source: a path, or the file's bytes (what the upload button receives).
        name: the clip's name in the chooser (default: the file's name; "your sound" for bytes).

    Raises:
        MediaError: the file is empty, not audio, truncated before its first sample, or silent in its first 4 s.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), name or "your sound"
    else:
        path = Path(source)
        data, name = path.read_bytes(), name or path.name
    *others, last = AUDIO_FILE_TYPES.split(",")
    hint = f"choose a {', '.join(others)} or {last} file with sound in it"
    if not data:
        raise MediaError(f"{name} is empty (0 bytes); {hint}")
    wave = _decode(data, name, fs, hint)[:clip_samples]
    if not np.all(np.isfinite(wave)):
        raise MediaError(f"{name} holds samples that are not numbers (NaN or infinite); {hint}")
    if not np.any(wave):
        raise MediaError(f"the first {clip_samples / fs:g} s of {name} are silent; {hint}")
    wave = np.pad(wave, (0, clip_samples - wave.size))
    return EvalClip(name, None, None, wave.astype(np.float32))


def _decode(data: bytes, name: str, fs: int, hint: str) -> np.ndarray:
    """A file's bytes as mono float32 (N,) at ``fs``."""
    if Path(name).suffix.lower() in AV_AUDIO_SUFFIXES or data[4:8] == b"ftyp":  # an MP4-family file
        # PyAV reads from a path: decode a temporary copy, and name the user's file in the message
        with tempfile.TemporaryDirectory(prefix="merlib-clip-") as tmp:
            path = Path(tmp) / "clip.mp4"
            path.write_bytes(data)
            try:
                return read_audio(path, fs)
            except MediaError as err:
                why = getattr(err.__cause__, "strerror", None)  # FFmpeg's reason, without the temporary path
                if why:
                    raise MediaError(f"cannot decode {name} as audio ({why}); {hint}") from None
                raise MediaError(f"{str(err).replace(str(path), name).rstrip('.')}; {hint}") from None
    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        why = (getattr(err, "error_string", None) or str(err)).rstrip(".")
        raise MediaError(f"cannot decode {name} as audio ({why}); {hint}") from None
    if x.shape[0] == 0:
        raise MediaError(f"{name} holds no samples (truncated?); {hint}")
    return resample(x.mean(axis=1), sr, fs)


def _wav_bytes(x: np.ndarray, fs: int) -> bytes:
    peak = float(np.max(np.abs(x))) or 1.0
    buf = io.BytesIO()
    sf.write(buf, (0.9 * x / peak).astype(np.float32), fs, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _png(fig: Figure, dpi: int = 80) -> bytes:
    # The lab's figures have fixed margins (subplots_adjust): no constrained layout or tight bounding box, which
    # measure every label again on each update and were most of an update's time. Fast zlib level: the PNGs
    # are shown once and thrown away.
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


class AcousticLab:
    """The interactive panel (module docstring).

    Args:
        clips: clean clips to choose from (:func:`merlib.analysis.load_eval_clips`; with frames when a model
            reads video).
        models: ``{Table II name: trained model}``; may be empty (then only sound and figures).
        settings: the starting values of the controls.
        seed: seeds the diffuse tail and the noise (the same settings always sound the same).
        snr_db: noise level (the corpus' 20 dB); None for none.
        device: where the models run.

    Attributes:
        controls: ``{"clip", "length", "width", "height", "t60", "distance", "num_mics"}`` → widget; setting a
            control's ``value`` updates everything.
        upload: the ``FileUpload`` button; a file chosen there goes through :meth:`add_clip_file`.
        result: the latest :class:`LabResult`.
        upload_error: why the last file could not be used (None after one that could).
        panel: the ipywidgets ``VBox`` to display (a notebook displays the lab object itself too).
    """

    def __init__(
        self,
        clips: Sequence[EvalClip],
        models: Mapping[str, nn.Module] | None = None,
        settings: LabSettings | None = None,
        seed: int = 0,
        snr_db: float | None = 20.0,
        device: str | torch.device = "cpu",
    ) -> None:
        import ipywidgets as w

        if not clips:
            raise ValueError("the lab needs at least one clip (merlib.analysis.load_eval_clips)")
        self.clips = list(clips)
        self.models = dict(models or {})
        self.specs = {name: get_spec(name) for name in self.models}
        if any(s.uses_video for s in self.specs.values()) and any(c.video is None for c in self.clips):
            raise ValueError("a model reads video: load the clips with their frames (load_eval_clips(video=True))")
        self.seed = int(seed)
        self.snr_db = snr_db
        self.device = torch.device(device)
        for m in self.models.values():
            m.to(self.device).eval()
        self._video_cache: dict[tuple[str, str], torch.Tensor] = {}
        tune_allocator()
        self.logmel = LogMel()
        s = settings or LabSettings()
        style = {"description_width": LABEL_WIDTH}

        def row() -> Any:  # each control fills the column (a flex column stretches it; "100%" plus the widget's
            return w.Layout(width="auto")  # margins would overflow it); its label keeps LABEL_WIDTH

        def slider(desc: str, value: float, lo: float, hi: float, step: float, fmt: str = ".2f") -> Any:
            return w.FloatSlider(value=value, min=lo, max=hi, step=step, description=desc, readout_format=fmt,
                                 continuous_update=False, style=style, layout=row())

        self.controls: dict[str, Any] = {
            "clip": w.Dropdown(options=self._clip_options(), value=s.clip, description="clip", style=style,
                               layout=row()),
            "length": slider("room length (m)", s.length, 3.0, 12.0, 0.1, ".1f"),
            "width": slider("room width (m)", s.width, 3.0, 12.0, 0.1, ".1f"),
            "height": slider("room height (m)", s.height, 2.4, 5.0, 0.1, ".1f"),
            "t60": slider("T60 (s)", s.t60, 0.15, 1.5, 0.05),
            "distance": slider("source–phone (m)", s.distance, 0.2, 6.0, 0.05),
            "num_mics": w.IntSlider(value=s.num_mics, min=1, max=3, description="microphones on",
                                    continuous_update=False, style=style, layout=row()),
        }
        self.upload = w.FileUpload(accept=AUDIO_FILE_TYPES, multiple=False, description="your own sound",
                                   icon="upload", tooltip="a .wav, .flac, .mp3, .ogg or .mp4 file becomes the clip",
                                   layout=w.Layout(width="auto", flex="0 0 auto", margin=f"6px 8px 2px {LABEL_WIDTH}"))
        upload_note = w.HTML(f"<div style='{_WRAP}; font-size: 12px; color: var(--jp-ui-font-color2, #666)'>"
                             "its first 4 s become the clip</div>", layout=w.Layout(flex="1 1 auto", min_width="0"))
        # fixed width, never shrunk by the right-hand column: labels and slider readouts stay whole
        controls = w.VBox([*self.controls.values(), w.HBox([self.upload, upload_note], layout=row())],
                          layout=w.Layout(flex="0 0 auto", width=CONTROL_WIDTH, min_width=CONTROL_WIDTH,
                                          margin="0 16px 8px 0"))
        self.status = w.HTML(layout=w.Layout(width="auto", min_width="0"))
        self.clean_audio = w.Audio(format="wav", autoplay=False, loop=False, layout=w.Layout(width="auto"))
        self.audio = w.Audio(format="wav", autoplay=False, loop=False, layout=w.Layout(width="auto"))
        self.figure = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.probability_image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        player = w.Layout(flex="1 1 240px", min_width="0")
        listen = w.HBox([w.VBox([w.HTML("<b>clean</b>"), self.clean_audio], layout=player),
                         w.VBox([w.HTML("<b>microphone 1 in the room</b>"), self.audio], layout=player)],
                        layout=w.Layout(flex_flow="row wrap", width="100%"))
        # flexible, and may shrink to nothing: its text wraps. A 300 px basis (not "auto", the status's unwrapped
        # width) keeps it beside the controls while 300 px are left, below them when not (the row wraps).
        right = w.VBox([self.status, listen], layout=w.Layout(flex="1 1 300px", min_width="0"))
        top = w.HBox([controls, right], layout=w.Layout(flex_flow="row wrap", align_items="flex-start", width="100%"))
        self.panel = w.VBox([top, self.figure, self.probability_image], layout=w.Layout(width="100%"))
        self.result: LabResult | None = None
        self.upload_error: str | None = None
        self.updates = 0
        self._quiet = False  # True while the chooser's options are replaced: no update for that
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.update()

    # -- the widget protocol -----------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.panel._repr_mimebundle_(**kwargs)

    def _on_change(self, change: Mapping[str, Any]) -> None:
        if not self._quiet:
            self.update()

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        files = change["new"]
        if not files:  # cleared below
            return
        upload = files[0]  # ipywidgets 8: {"name", "type", "size", "content": memoryview, "last_modified"}
        name = str(upload.get("name") or "your sound")
        try:
            self.add_clip_file(upload["content"], name=name)
        except Exception as err:  # a widget callback has nowhere to show a traceback: say what went wrong instead
            self.upload_error = str(err) if isinstance(err, MerlibError) else f"cannot use {name}: {err!r}"
            clip = self.clips[self.settings.clip]
            self._set_status(f"<span style='color:#b00'>⚠ {html.escape(self.upload_error)}</span> — the lab keeps "
                             f"the clip {html.escape(clip.clip_id)}")
        finally:
            self.upload.value = ()  # so that choosing the same file again is a change

    def _set_status(self, text: str) -> None:
        self.status.value = f"<div style='{_WRAP}'>{text}</div>"

    def _clip_options(self) -> list[tuple[str, int]]:
        return [(f"{c.clip_id} · {c.emotion} · actor {c.actor}" if c.label is not None else
                 f"{c.clip_id} · your sound, emotion unknown", i) for i, c in enumerate(self.clips)]

    # -- your own sound ----------------------------------------------------------------------------

    def add_clip(self, clip: EvalClip) -> LabResult:
        """Add ``clip`` to the chooser and select it: the room is simulated again and every model runs on it
        (those that read video only when it has frames). A clip with the name and sound of one already there
        is selected, not added twice; another clip of the same name gets " (2)" appended. Returns the result."""
        chooser = self.controls["clip"]
        same = [i for i, c in enumerate(self.clips) if c.clip_id == clip.clip_id
                and c.waveform.shape == clip.waveform.shape and np.array_equal(c.waveform, clip.waveform)]
        if same:
            index = same[0]
        else:
            taken, name, n = {c.clip_id for c in self.clips}, clip.clip_id, 2
            while name in taken:
                name, n = f"{clip.clip_id} ({n})", n + 1
            self.clips.append(dataclasses.replace(clip, clip_id=name))
            index = len(self.clips) - 1
            self._quiet = True
            try:
                chooser.options = self._clip_options()
            finally:
                self._quiet = False
        self.upload_error = None
        if chooser.value == index:
            return self.update()
        chooser.value = index  # its observer updates the lab
        assert self.result is not None
        return self.result

    def add_clip_file(self, source: str | os.PathLike | bytes | bytearray | memoryview,
                      name: str | None = None) -> LabResult:
        """A sound file of your own (a path or its bytes) as the lab's clip: :func:`load_clip`, then
        :meth:`add_clip`. What the upload button runs. Raises :class:`~merlib.errors.MediaError` for a file that
        cannot be used, and the lab keeps its clip."""
        return self.add_clip(load_clip(source, name, clip_samples=CLIP_SAMPLES))

    @property
    def settings(self) -> LabSettings:
        c = self.controls
        return LabSettings(int(c["clip"].value), float(c["length"].value), float(c["width"].value),
                           float(c["height"].value), float(c["t60"].value), float(c["distance"].value),
                           int(c["num_mics"].value))

    # -- computing ---------------------------------------------------------------------------------

    def _video_output(self, name: str, model: nn.Module, clip: EvalClip) -> torch.Tensor:
        """What a model computes from a clip's frames alone — the video model's logits, MER's video embedding —
        computed once per clip and model: the controls change only the audio, and R(2+1)D on 8×224² frames is
        most of an update's time with paper-size models."""
        key = (name, clip.clip_id)
        if key not in self._video_cache:
            video = clip.video.unsqueeze(0).to(self.device)  # type: ignore[union-attr]
            self._video_cache[key] = model.video(video) if isinstance(model, MER) else forward_logits(
                model, self.specs[name], {"video": video})
        return self._video_cache[key]

    def _probabilities(self, reverberant: np.ndarray, clip: EvalClip) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        wave = torch.from_numpy(reverberant).unsqueeze(0).to(self.device)  # (1, C, N)
        with torch.inference_mode():
            for name, model in self.models.items():
                spec = self.specs[name]
                if spec.uses_video and clip.video is None:
                    continue  # a sound of your own has no face video (compute lists these as not_run)
                if not spec.uses_audio:
                    logits = self._video_output(name, model, clip)
                else:
                    # the single-channel models read microphone 1; the array models as many as are on
                    waveform = wave[:, :1] if spec.num_mics <= 1 else wave
                    with audio_branch(model).using_mics(waveform.shape[1]):
                        if isinstance(model, MER):
                            audio = model.audio(waveform).embedding
                            logits = model.fuse(audio, self._video_output(name, model, clip))
                        else:
                            logits = forward_logits(model, spec, {"waveform": waveform})
                out[name] = torch.softmax(logits.float(), dim=-1)[0].cpu().numpy()
        return out

    def compute(self, settings: LabSettings) -> LabResult:
        """Simulate, reverberate and classify for ``settings`` (what every control change runs)."""
        clip = self.clips[settings.clip]
        result = LabResult(settings)
        try:
            scene = lab_scene(settings.length, settings.width, settings.height, settings.t60, settings.distance)
        except ValueError as err:
            result.error = str(err)
            return result
        # the room and the noise do not depend on how many microphones are on: switching one off must not
        # change what the others hear
        key = zlib.crc32(f"{self.seed}|{clip.clip_id}|{dataclasses.replace(settings, num_mics=0)}".encode())
        all_rirs = simulate_scene(scene, generator=torch.Generator().manual_seed(key)).cpu().numpy()
        everything = reverberate(clip.waveform, all_rirs, self.snr_db, np.random.default_rng(key))
        rirs, rev = all_rirs[: settings.num_mics], everything[: settings.num_mics]
        result.scene, result.rirs, result.reverberant = scene, rirs, rev
        result.probabilities = self._probabilities(rev, clip)
        result.not_run = [name for name in self.models if name not in result.probabilities]
        result.audio_wav = _wav_bytes(rev[0], scene.fs)
        result.clean_wav = _wav_bytes(clip.waveform, scene.fs)
        result.figure_png = _png(self._figure(result, clip))
        if result.probabilities:
            result.probabilities_png = _png(self._probability_figure(result.probabilities, clip))
        return result

    def update(self) -> LabResult:
        """Recompute from the controls and refresh the panel; returns the new :attr:`result`."""
        result = self.compute(self.settings)
        self.updates += 1
        self.result = result
        if result.error:
            self._set_status(f"<span style='color:#b00'>⚠ {html.escape(result.error)}</span>")
            return result
        scene = result.scene
        assert scene is not None
        ratio = scene.distance / scene.critical_distance
        not_run = ""
        if result.not_run:
            names = ", ".join(MODEL_LABELS.get(n, n) for n in result.not_run)
            not_run = f" · not run on this sound (no face video): {html.escape(names)}"
        self._set_status(
            f"V = {scene.volume:.0f} m³ · T60 = {scene.t60:.2f} s · critical distance d<sub>c</sub> = "
            f"{scene.critical_distance:.2f} m · d / d<sub>c</sub> = {ratio:.2f} "
            f"({'direct sound dominates' if ratio < 1 else 'reverberation dominates'}) · "
            f"DRR (theory) {scene.drr_theory_db:+.1f} dB · {result.settings.num_mics} microphone(s) on{not_run}"
        )
        self.audio.value = result.audio_wav
        self.clean_audio.value = result.clean_wav
        self.figure.value = result.figure_png
        self.probability_image.value = result.probabilities_png  # empty when no model ran: no stale bars
        return result

    # -- drawing -----------------------------------------------------------------------------------

    def _figure(self, result: LabResult, clip: EvalClip) -> Figure:
        scene, rirs, rev = result.scene, result.rirs, result.reverberant
        assert scene is not None and rirs is not None and rev is not None
        fig = Figure(figsize=(13, 3.2))
        fig.subplots_adjust(left=0.015, right=0.995, bottom=0.15, top=0.91, wspace=0.16)
        ax_rir, ax_clean, ax_rev = fig.subplots(1, 3)
        t = np.arange(rirs.shape[1]) / scene.fs
        for m in range(rirs.shape[0]):
            ax_rir.plot(t * 1000, rirs[m] / (np.max(np.abs(rirs)) or 1.0) - 1.2 * m, lw=0.6, label=f"mic {m + 1}")
        ax_rir.set_xlim(0, min(t[-1], max(0.15, 0.6 * scene.t60)) * 1000)
        ax_rir.set_yticks([])
        ax_rir.set_xlabel("time (ms)")
        ax_rir.set_title(f"RIRs (T60 {scene.t60:.2f} s, d = {scene.distance:.2f} m)", fontsize=10)
        ax_rir.legend(fontsize=7, loc="upper right")
        with torch.inference_mode():
            mels = self.logmel(torch.from_numpy(np.stack([clip.waveform, rev[0]]))).numpy()  # (2, 401, 64)
        lo, hi = float(mels.max()) - 80.0, float(mels.max())
        for ax, mel, title in ((ax_clean, mels[0], "clean log-mel"), (ax_rev, mels[1], "microphone 1 in the room")):
            ax.imshow(mel.T, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                      extent=(0, mel.shape[0] * 0.01, 0, mel.shape[1]))
            ax.set_xlabel("time (s)")
            ax.set_ylabel("mel band")
            ax.set_title(title, fontsize=10)
        return fig

    def _probability_figure(self, probabilities: Mapping[str, np.ndarray], clip: EvalClip) -> Figure:
        names = list(probabilities)
        k = len(next(iter(probabilities.values())))
        labels = class_names(k)
        fig = Figure(figsize=(13, 2.8))
        fig.subplots_adjust(left=0.05, right=0.995, bottom=0.1, top=0.97)
        ax = fig.subplots()
        width = 0.8 / len(names)
        x = np.arange(k)
        for i, name in enumerate(names):
            p = probabilities[name]
            ax.bar(x + (i - (len(names) - 1) / 2) * width, 100 * p, width, color=f"C{i}",
                   label=f"{MODEL_LABELS.get(name, name)} → {labels[int(np.argmax(p))]}")
        if clip.label is not None:  # a sound of your own has no true class
            ax.axvspan(clip.label - 0.45, clip.label + 0.45, color=EMOTION_COLOURS[clip.label % 8], alpha=0.15)
        ax.axhline(100 / k, color="grey", ls=":", lw=1)
        ax.set_xticks(x, [f"{n}{' (true)' if j == clip.label else ''}" for j, n in enumerate(labels)])
        ax.set_ylabel("probability (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8, ncols=min(4, len(names)), loc="upper left")
        return fig
