"""A drawn, animated face for the synthetic RAVDESS: expression follows emotion and intensity.

Notebook: 00_data_tour.ipynb

RAVDESS films 24 actors (odd = male, even = female) frontally against a white wall, head and shoulders,
1280×720 at 30 fps, while they say one of two sentences with one of 8 emotions. The real corpus may not
be redistributed, so merlib draws a stand-in with OpenCV:

- **Per actor** (:func:`actor_appearance`): skin tone, hair colour and style (short for most men, longer
  for most women), face width and height, eye spacing and size, brow thickness, lip shape, shirt, wall
  brightness, the direction and strength of the key light (a brightness gradient across the face), beard
  shadow (men), and how the actor emotes: an overall expressiveness, per-action-unit gains and a slightly
  different resting face.
- **Per emotion** (:data:`EXPRESSIONS`): a FACS-like set of action-unit amplitudes at the expression peak
  (brows, lids, cheeks, nose, lips, jaw). Intensity 2 ("strong") multiplies it by
  :data:`STRONG_GAIN`. Neighbouring emotions share action units (calm ≈ a faint neutral smile,
  fearful ≈ surprised with a stretched instead of dropped mouth, angry ≈ disgust without the nose and
  upper lip), and every clip jitters every amplitude, so the classes are learnable but overlap.
- **Per frame**: neutral start, a smooth ramp to the peak around ``onset``, a hold while speaking,
  a partial relaxation after ``offset``; the jaw additionally opens with the speech envelope
  ``mouth_open``; blinks at random times; slow head translation and roll; a small camera-exposure
  drift. The mean colour of a frame is set by the actor and the clip's exposure, not by the emotion
  (a test checks that mean colour alone stays near chance).

Drawing happens at the requested resolution (anti-aliased polygons with sub-pixel coordinates), so the
cost scales with the frame size: the static parts (wall, shadow, shirt, neck, hair, ears, shaded skin) are
drawn once per clip; each frame copies them through the exposure look-up table, draws the moving parts
(brows, eyes, nose, mouth, folds, soft shading, jaw) and warps the head region by the head motion
(feathered into the static neck). About 0.8 / 1.5 / 4.7 ms of one CPU core per 320×180 / 640×360 /
1280×720 frame.

Calibration (``benchmarks/calibrate_face.py``; quick layout, 8 actors × 16 clips, 320×180, leave one actor
out, standardised logistic regression): the corpus baseline's centre-crop 24×24 grey features score
~55–65 % (chance 12.5 %), per-clip mean colour alone ~10–18 %, and OpenCV's Haar frontal-face cascade
finds the face in ~96–99 % of frames. The knobs are the ``_CLIP_*``, ``_POSE_SIGMA``, ``_HEAD_MOTION``,
``_EXPRESSIVENESS``, ``_AU_GAIN_SIGMA`` and ``_SKIN_*`` constants below.

Determinism: the same arguments give the same frames. Every random choice comes from
``np.random.SeedSequence`` keyed by (seed, actor, label, intensity, n_frames, variant, speech envelope);
nothing touches the global RNG.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "EMOTIONS",
    "ACTION_UNITS",
    "EXPRESSIONS",
    "STRONG_GAIN",
    "FPS",
    "Appearance",
    "actor_appearance",
    "expression_peak",
    "render_face_video",
    "contact_sheet",
]

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")  # label = index
FPS = 30.0  # RAVDESS frame rate; blink durations and head-motion speeds assume it

# FACS-like action units (AU numbers for orientation). Each is a dimensionless amplitude; 1 is a clear,
# full expression of that unit at intensity "normal" for an average actor.
ACTION_UNITS = (
    "brow_inner_up",    # AU1  inner brow raiser
    "brow_outer_up",    # AU2  outer brow raiser
    "brow_lower",       # AU4  brow lowerer: brows down and drawn together, frown lines
    "upper_lid_up",     # AU5  upper lid raiser (eyes wide); negative = drooping lids
    "lid_tighten",      # AU7  lid tightener: lower lid up, eyes narrowed
    "cheek_raise",      # AU6  cheek raiser: lower lid bulge, deeper nasolabial folds
    "nose_wrinkle",     # AU9  nose wrinkler: wrinkles on the bridge, nostrils up
    "upper_lip_up",     # AU10 upper lip raiser: upper lip up, upper teeth show
    "lip_corner_up",    # AU12 lip corner puller (smile)
    "lip_corner_down",  # AU15 lip corner depressor
    "lip_stretch",      # AU20 lip stretcher: mouth wider, flatter (negative = rounder, narrower)
    "lip_press",        # AU23/24 lip tightener/presser: thin, narrow lips
    "jaw_drop",         # AU26/27 jaw drop: mouth opens, chin moves down
)
_AU = {name: i for i, name in enumerate(ACTION_UNITS)}

# Peak action-unit amplitudes per emotion at intensity 1 (normal); absent units are 0.
EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "calm": {"lip_corner_up": 0.3, "upper_lid_up": -0.2, "cheek_raise": 0.1},
    "happy": {"lip_corner_up": 1.0, "cheek_raise": 0.9, "lid_tighten": 0.35, "jaw_drop": 0.3,
              "upper_lip_up": 0.25, "lip_stretch": 0.2, "brow_outer_up": 0.1},
    "sad": {"brow_inner_up": 0.9, "brow_lower": 0.35, "upper_lid_up": -0.55, "lip_corner_down": 0.85,
            "lip_press": 0.2},
    "angry": {"brow_lower": 1.0, "lid_tighten": 0.6, "upper_lid_up": 0.15, "lip_press": 0.85,
              "nose_wrinkle": 0.15},
    "fearful": {"brow_inner_up": 0.9, "brow_outer_up": 0.5, "brow_lower": 0.4, "upper_lid_up": 0.9,
                "lip_stretch": 0.9, "jaw_drop": 0.3},
    "disgust": {"nose_wrinkle": 1.0, "upper_lip_up": 0.9, "brow_lower": 0.6, "lid_tighten": 0.45,
                "lip_corner_down": 0.35, "cheek_raise": 0.3},
    "surprised": {"brow_inner_up": 1.0, "brow_outer_up": 1.0, "upper_lid_up": 0.9, "jaw_drop": 0.9,
                  "lip_stretch": -0.2},
}
STRONG_GAIN = 1.6  # intensity 2 ("strong") amplitude relative to intensity 1

# Per-clip variability of the expression (calibrated so a simple pixel baseline is well above chance
# but far from perfect under leave-one-actor-out; see tests/test_synthetic_face.py).
_CLIP_GAIN_SIGMA = 0.25     # log-normal spread of the whole expression's amplitude per clip
_CLIP_AU_NOISE = 0.18       # additive N(0, σ) on every action unit's peak amplitude per clip
_MICRO_NOISE = 0.05         # slow frame-to-frame wobble of every action unit
_POSE_SIGMA = (0.006, 0.005, 0.02)  # per-clip seating offset (x, y as a fraction of frame height) and log-scale
_HEAD_MOTION = 0.5          # head translation/roll amplitude multiplier
_EXPRESSIVENESS = (0.95, 1.45)  # range of the per-actor expression amplitude
_AU_GAIN_SIGMA = 0.15       # log-normal spread of each actor's per-action-unit gain
_SKIN_RANGE = (0.0, 5.0)    # skin tones drawn from this span of _SKIN_TONES (0 = lightest) ...
_SKIN_BETA = (1.0, 1.0)     # ... with this Beta distribution

_SKIN_TONES = np.array([(243, 214, 194), (236, 196, 168), (226, 178, 146), (210, 160, 124), (188, 138, 102),
                        (160, 114, 82), (128, 88, 62), (98, 66, 48)], dtype=np.float64)
_HAIR_COLOURS = np.array([(28, 24, 22), (52, 36, 26), (86, 58, 38), (118, 78, 46), (124, 58, 34),
                          (176, 142, 96), (206, 178, 126), (140, 136, 132)], dtype=np.float64)
_IRIS_COLOURS = np.array([(70, 46, 30), (46, 32, 24), (84, 112, 146), (88, 116, 82), (118, 96, 58)],
                         dtype=np.float64)
_SHIRT_COLOURS = np.array([(22, 22, 24), (30, 30, 34), (18, 20, 28), (40, 40, 42), (26, 24, 22)],
                          dtype=np.float64)
_MALE_STYLES = ("short", "crop", "side_part", "receding", "curly")
_FEMALE_STYLES = ("long", "long_part", "bob", "bun", "shoulder")


@dataclass(frozen=True)
class Appearance:
    """How one actor looks and emotes. Lengths are in units of the face's half-height ``u`` unless noted."""

    actor: int
    sex: str                                # "male" (odd actor) | "female" (even actor)
    skin: tuple[float, float, float]        # RGB 0–255
    hair_colour: tuple[float, float, float]
    hair_style: str                         # one of _MALE_STYLES / _FEMALE_STYLES
    hair_length: float                      # where side hair ends, in u below the face centre (< 0: above the ears)
    hair_volume: float                      # extra height above the skull, in u
    hairline: float                         # forehead hairline height above the face centre, in u
    part: float                             # side-parting offset, in face half-widths (0 = centre)
    iris_colour: tuple[float, float, float]
    lip_colour: tuple[float, float, float]
    shirt_colour: tuple[float, float, float]
    background: float                       # wall brightness 0–255
    face_height: float                      # face (chin to hairline) height / frame height
    face_width: float                       # face half-width / u
    head_y: float                           # face centre / frame height
    jaw_taper: float                        # 0 = round jaw, larger = pointier chin
    eye_spacing: float                      # eye-centre offset from the midline, in u
    eye_size: float                         # eye half-width, in u
    eye_tilt: float                         # canthal tilt (outer corner up), fraction of the eye half-width
    brow_thickness: float                   # in u
    brow_height: float                      # brow base above the eye centre, in u
    nose_length: float                      # nose tip below the face centre, in u
    mouth_y: float                          # mouth centre below the face centre, in u
    mouth_width: float                      # mouth half-width, in u
    lip_thickness: float                    # upper-lip thickness, in u
    light_angle: float                      # direction the key light comes from, radians in image coordinates
    light_strength: float                   # brightness gradient across one face half-height (fraction)
    beard: float                            # beard-shadow strength 0–1 (0 for women)
    expressiveness: float                   # overall expression amplitude multiplier
    au_gain: tuple[float, ...] = field(default_factory=tuple)  # per action unit multiplier
    au_rest: tuple[float, ...] = field(default_factory=tuple)  # resting-face offsets per action unit
    speech_jaw: float = 0.4                 # jaw opening at full speech envelope (action-unit units)
    blink_rate: float = 0.3                 # blinks per second
    motion: float = 1.0                     # head-motion amplitude multiplier


def _check_actor(actor) -> int:
    if isinstance(actor, bool) or not isinstance(actor, (int, np.integer)) or not 1 <= int(actor) <= 99:
        raise ValueError(f"actor must be an integer 1–99 (RAVDESS has 01–24; odd = male, even = female), got {actor!r}")
    return int(actor)


def actor_appearance(actor: int, seed: int = 0) -> Appearance:
    """The deterministic look and expressiveness of one actor (odd = male, even = female)."""
    actor = _check_actor(actor)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xFACE, actor]))
    male = actor % 2 == 1
    u = rng.uniform

    def mix(palette, jitter):
        i = rng.integers(len(palette))
        c = palette[i] * (1 + rng.normal(0, jitter, 3))
        return tuple(float(v) for v in np.clip(c, 0, 255))

    # Skin: a continuum between neighbouring tones.
    k = _SKIN_RANGE[0] + (_SKIN_RANGE[1] - _SKIN_RANGE[0]) * rng.beta(*_SKIN_BETA)
    lo = int(k)
    skin = _SKIN_TONES[lo] * (1 - (k - lo)) + _SKIN_TONES[min(lo + 1, len(_SKIN_TONES) - 1)] * (k - lo)
    skin = tuple(float(v) for v in np.clip(skin * (1 + rng.normal(0, 0.02, 3)), 0, 255))
    hair = mix(_HAIR_COLOURS, 0.06)
    style = str(rng.choice(_MALE_STYLES if male else _FEMALE_STYLES))
    length = {"short": -0.1, "crop": -0.15, "side_part": 0.0, "receding": -0.1, "curly": 0.05,
              "long": 2.1, "long_part": 1.9, "bob": 0.85, "bun": -0.05, "shoulder": 1.45}[style] + u(-0.1, 0.1)
    volume = {"curly": u(0.22, 0.32), "bun": u(0.1, 0.16), "crop": u(0.04, 0.08)}.get(style, u(0.1, 0.2))
    hairline = {"receding": u(0.9, 0.96)}.get(style, u(0.74, 0.86))
    part = {"side_part": rng.choice([-1, 1]) * u(0.3, 0.5), "long_part": rng.choice([-1, 1]) * u(0.25, 0.45)}.get(style, 0.0)
    skin_arr = np.array(skin)
    lip = skin_arr * (np.array([0.84, 0.6, 0.6]) if male else np.array([0.88, 0.55, 0.58]))
    n_au = len(ACTION_UNITS)
    au_rest = np.zeros(n_au)
    for name, sd in (("brow_inner_up", 0.1), ("brow_lower", 0.1), ("upper_lid_up", 0.1), ("lip_corner_up", 0.12),
                     ("lip_corner_down", 0.08), ("lip_press", 0.1)):
        au_rest[_AU[name]] = rng.normal(0, sd)
    return Appearance(
        actor=actor,
        sex="male" if male else "female",
        skin=skin,
        hair_colour=hair,
        hair_style=style,
        hair_length=float(length),
        hair_volume=float(volume),
        hairline=float(hairline),
        part=float(part),
        iris_colour=mix(_IRIS_COLOURS, 0.08),
        lip_colour=tuple(float(v) for v in np.clip(lip, 0, 255)),
        shirt_colour=mix(_SHIRT_COLOURS, 0.1),
        background=float(u(226, 250)),
        face_height=float(u(0.38, 0.4)),
        face_width=float(u(0.72, 0.8) if male else u(0.68, 0.76)),
        head_y=float(u(0.44, 0.452)),
        jaw_taper=float(u(0.05, 0.14) if male else u(0.12, 0.22)),
        eye_spacing=float(u(0.317, 0.337)),
        eye_size=float(u(0.145, 0.165)),
        eye_tilt=float(u(-0.05, 0.12)),
        brow_thickness=float(u(0.05, 0.068) if male else u(0.042, 0.055)),
        brow_height=float(u(0.237, 0.257)),
        nose_length=float(u(0.26, 0.28)),
        mouth_y=float(u(0.56, 0.58)),
        mouth_width=float(u(0.237, 0.257)),
        lip_thickness=float(u(0.04, 0.055) if male else u(0.05, 0.065)),
        light_angle=float(rng.choice([-1, 1]) * u(0.5, 2.4)),
        light_strength=float(u(0.06, 0.16)),
        beard=float(u(0.0, 0.7)) if male else 0.0,
        expressiveness=float(u(*_EXPRESSIVENESS)),
        au_gain=tuple(float(v) for v in np.exp(rng.normal(0, _AU_GAIN_SIGMA, n_au))),
        au_rest=tuple(float(v) for v in au_rest),
        speech_jaw=float(u(0.3, 0.5)),
        blink_rate=float(u(0.18, 0.4)),
        motion=float(u(0.6, 1.4)),
    )


def expression_peak(emotion: str, intensity: int = 1) -> np.ndarray:
    """The noiseless peak action-unit vector (ordered as :data:`ACTION_UNITS`) of an emotion."""
    label = _check_emotion(emotion)
    intensity = _check_intensity(intensity, label)
    vec = np.zeros(len(ACTION_UNITS))
    for name, value in EXPRESSIONS[EMOTIONS[label]].items():
        vec[_AU[name]] = value
    return vec * (STRONG_GAIN if intensity == 2 else 1.0)


def _check_emotion(emotion) -> int:
    if isinstance(emotion, str) and emotion.lower() in EMOTIONS:
        return EMOTIONS.index(emotion.lower())
    raise ValueError(f"emotion must be one of {', '.join(EMOTIONS)}; got {emotion!r}")


def _check_intensity(intensity, label: int) -> int:
    if isinstance(intensity, bool) or not isinstance(intensity, (int, np.integer)) or int(intensity) not in (1, 2):
        raise ValueError(f"intensity must be 1 (normal) or 2 (strong); got {intensity!r}")
    if label == 0 and int(intensity) == 2:
        raise ValueError("neutral has no strong intensity in RAVDESS: use intensity=1")
    return int(intensity)


def _check_size(size) -> tuple[int, int]:
    try:
        w, h = size
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (w, h))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"size must be a (width, height) pair of integers, got {size!r}")
    w, h = int(w), int(h)
    if not (160 <= w <= 1280 and 90 <= h <= 720):
        raise ValueError(f"size must be between 160x90 and 1280x720 (width, height), got {w}x{h}")
    if not 1.5 <= w / h <= 2.0:
        raise ValueError(f"size must be about 16:9 (width/height between 1.5 and 2.0), got {w}x{h}")
    return w, h


# ----------------------------------------------------------------------------------------------------------
# drawing helpers

_SHIFT = 4
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


def _cat(*parts) -> np.ndarray:
    return np.concatenate(parts)


def _xy(x, y) -> np.ndarray:
    return np.rint(np.stack((x, y), 1) * _ONE).astype(np.int32)


def _col(c) -> tuple[float, float, float]:
    return (float(c[0]), float(c[1]), float(c[2]))


def _fill(img, x, y, colour):
    cv2.fillPoly(img, [_xy(x, y)], _col(colour), _AA, _SHIFT)


def _line(img, x, y, colour, thickness: float):
    """Anti-aliased polyline, at least one pixel wide."""
    cv2.polylines(img, [_xy(x, y)], False, _col(colour), max(1, int(round(thickness))), _AA, _SHIFT)


def _soft_line(img, x, y, colour, base, strength: float, thickness: float):
    """A line whose colour is ``base`` pulled toward ``colour`` by ``strength`` (0–1): a faint crease."""
    if strength <= 0.02:
        return
    strength = min(1.0, strength)
    _line(img, x, y, np.asarray(base) * (1 - strength) + np.asarray(colour) * strength, thickness)


def _ellipse(img, cx, cy, ax, ay, colour, angle=0.0, thickness=-1, a0=0, a1=360):
    cv2.ellipse(img, (int(round(cx * _ONE)), int(round(cy * _ONE))),
                (max(1, int(round(ax * _ONE))), max(1, int(round(ay * _ONE)))), angle, a0, a1, _col(colour),
                thickness, _AA, _SHIFT)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


_S_EYE = np.linspace(-1, 1, 15)
_S_MOUTH = np.linspace(-1, 1, 21)
_THETA = np.linspace(0, 2 * np.pi, 20, endpoint=False)


# ----------------------------------------------------------------------------------------------------------
# geometry of one clip


class _Geometry:
    """Pixel positions of one actor's face in one clip (canonical pose, before head motion)."""

    def __init__(self, app: Appearance, w: int, h: int, dx: float, dy: float, scale: float):
        self.w, self.h = w, h
        self.u = u = app.face_height * h / 2 * scale
        self.a = app.face_width * u
        self.cx = w / 2 + dx
        self.cy = app.head_y * h + dy
        self.ey = self.cy - 0.18 * u
        self.ex = (self.cx - app.eye_spacing * u, self.cx + app.eye_spacing * u)
        self.ew = app.eye_size * u
        self.ny = self.cy + app.nose_length * u
        self.my = self.cy + app.mouth_y * u
        self.px = max(1.0, u / 70.0)  # a "one pixel at 640x360" line width, scaled
        self.light = np.array([math.cos(app.light_angle), math.sin(app.light_angle)]) * app.light_strength
        # hairline as a function of x (for clipping forehead wrinkles)
        hx = np.linspace(-1.2, 1.2, 25)
        self.hair_x = self.cx + hx * self.a
        self.hair_y = self.cy - u * _hairline_profile(app, hx)

    def gain(self, x, y) -> float:
        """Key-light brightness factor at a point (the same gradient as the shaded skin)."""
        return float(1 + self.light[0] * (x - self.cx) / self.u + self.light[1] * (y - self.cy) / self.u)

    def outline(self, b_low: float, taper: float, n: int = 48):
        """Face outline polygon: superelliptic forehead, tapered jaw reaching ``b_low`` below the centre."""
        phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
        c, s = np.cos(phi), np.sin(phi)
        top = s < 0
        x = np.where(top, self.a * np.sign(c) * np.abs(c) ** 0.85, self.a * c * (1 - taper * s ** 2))
        y = np.where(top, self.u * 1.0 * np.sign(s) * np.abs(s) ** 0.9, b_low * s)
        return self.cx + x, self.cy + y


def _hairline_profile(app: Appearance, hx: np.ndarray) -> np.ndarray:
    """Height of the front hairline above the face centre (in u) at normalised x (face half-widths)."""
    temple = 0.5 if app.hair_style != "receding" else 0.62
    drop = _smoothstep((np.abs(hx) - 0.55) / 0.5)
    prof = app.hairline - (app.hairline - temple) * drop
    if app.part != 0.0:  # a side parting: the hair is swept lower on the far side, the parting itself is high
        sweep = np.clip(-(hx - app.part) * np.sign(app.part), 0, 1)
        prof = prof - 0.1 * sweep * (1 - drop) + 0.06 * np.exp(-((hx - app.part) / 0.12) ** 2)
    return prof


# ----------------------------------------------------------------------------------------------------------
# static layer: wall, shirt, neck, hair, ears, shaded face (once per clip)


def _static_layers(app: Appearance, g: _Geometry):
    w, h, u, a, cx, cy = g.w, g.h, g.u, g.a, g.cx, g.cy
    skin = np.array(app.skin)
    hair = np.array(app.hair_colour)
    bg = app.background
    # wall: slight vertical gradient and a faint wall tint
    col = np.linspace(1.01, 0.97, h)[:, None] * np.array([bg, bg * 0.995, bg * 0.985])[None, :]
    base = np.broadcast_to(np.clip(col, 0, 255).astype(np.uint8)[:, None, :], (h, w, 3)).copy()
    # soft shadow of the actor on the wall
    sh = np.zeros((h, w), np.uint8)
    sdx = -math.cos(app.light_angle) * 0.08 * u
    _ellipse(sh, cx + sdx, cy + 0.1 * u, a * 1.35, u * 1.35, (255, 255, 255))
    shx = cx + sdx + np.array([-3.3, -1.2, 1.2, 3.3]) * a
    _fill(sh, shx, np.array([h * 1.1, cy + 1.6 * u, cy + 1.6 * u, h * 1.1]), (255,) * 3)
    k = int(u * 0.35) | 1
    sh = cv2.GaussianBlur(sh, (k, k), 0).astype(np.float32) / 255
    base = (base * (1 - 0.06 * sh[..., None])).astype(np.uint8)

    # back hair
    vol = app.hair_volume
    top_y = cy - u * (1.0 + vol)
    hw = a * (1.12 + 0.4 * vol)
    if app.hair_length > 0.3:
        L = cy + app.hair_length * u
        phi = np.linspace(np.pi, 2 * np.pi, 24)
        xs = cx + hw * np.cos(phi)
        ys = (cy - 0.1 * u) + (cy - 0.1 * u - top_y) * np.sin(phi)
        xs = np.r_[cx - hw * 1.04, xs, cx + hw * 1.04, cx + hw * 0.95, cx - hw * 0.95]
        ys = np.r_[L, ys, L, L + 0.08 * u, L + 0.08 * u]
        order = np.r_[0, np.arange(1, 25), 25, 26, 27]
        _fill(base, xs[order], ys[order], hair * 0.8)
    else:  # a dome over the skull that ends above the ears
        phi = np.linspace(np.pi * 0.97, np.pi * 2.03, 28)
        _fill(base, cx + hw * np.cos(phi), (cy - 0.12 * u) + u * (0.98 + vol) * np.sin(phi), hair * 0.92)
    if app.hair_style == "bun":
        _ellipse(base, cx, top_y - 0.02 * u, 0.36 * a, 0.24 * u, hair * 0.85)

    # shirt and shoulders
    ys0 = cy + 1.5 * u
    dxs = np.linspace(0.5 * a, 4.5 * a, 16)
    sy = ys0 + 0.5 * u * (1 - np.exp(-(dxs - 0.5 * a) / (0.9 * a))) + 0.08 * u * ((dxs - 0.5 * a) / a) ** 2
    shirt = np.array(app.shirt_colour)
    xs = np.r_[cx - dxs[::-1], cx + dxs, cx + dxs[-1], cx - dxs[-1]]
    ys = np.r_[sy[::-1], sy, h + 5.0, h + 5.0]
    _fill(base, xs, ys, shirt)
    # neck (slightly shadowed skin), with a crew-neck collar
    nx = np.array([-0.5, -0.5, -0.52, -0.4, 0, 0.4, 0.52, 0.5, 0.5]) * a
    ny = np.array([0.2, 1.0, 1.55, 1.72, 1.78, 1.72, 1.55, 1.0, 0.2]) * u
    _fill(base, cx + nx, cy + ny, skin * 0.84)
    # a soft shadow under the chin, blurred inside the neck only
    nroi = (int(max(0, cy + 0.2 * u)), int(min(h, cy + 1.8 * u)), int(max(0, cx - 0.6 * a)), int(min(w, cx + 0.6 * a + 1)))
    if nroi[1] - nroi[0] > 2 and nroi[3] - nroi[2] > 2:
        region = base[nroi[0]:nroi[1], nroi[2]:nroi[3]]
        shade = region.copy()
        _ellipse(shade, cx - nroi[2], cy + 0.95 * u - nroi[0], 0.55 * a, 0.25 * u, skin * 0.68)
        k = int(0.12 * u) | 1
        shade = cv2.GaussianBlur(shade, (k, k), 0)
        nmask = np.zeros(region.shape[:2], np.uint8)
        _fill(nmask, cx + nx - nroi[2], cy + ny - nroi[0], (255, 255, 255))
        np.copyto(region, shade, where=nmask[..., None] > 127)
    t = np.linspace(-1, 1, 15)
    _line(base, cx + 0.53 * a * t, cy + u * (1.55 + 0.23 * (1 - t ** 2)), shirt + 25, max(1.0, 2.2 * g.px))
    # ears
    for side in (-1, 1):
        ex = cx + side * 0.98 * a
        gl = g.gain(ex, cy)
        _ellipse(base, ex, cy - 0.04 * u, 0.14 * u, 0.25 * u, skin * 0.93 * gl)
        _ellipse(base, ex + side * 0.02 * u, cy - 0.02 * u, 0.07 * u, 0.15 * u, skin * 0.78 * gl)

    # shaded skin texture over the face region (also used per frame for the dropping jaw)
    x0, x1 = int(max(0, cx - 1.25 * a)), int(min(w, cx + 1.25 * a + 1))
    y0, y1 = int(max(0, cy - 1.2 * u)), int(min(h, cy + 1.7 * u))
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    xn, yn = (xx + 0.5 - cx) / u, (yy + 0.5 - cy) / u
    an = a / u
    gain = 1 + g.light[0] * xn + g.light[1] * yn
    gain *= 1 - 0.22 * np.clip(np.abs(xn) / an, 0, 1.3) ** 4           # rounding toward the sides
    gain *= 1 - 0.08 * np.clip(-yn - 0.55, 0, None)                     # forehead turning away
    ey = (g.ey - cy) / u
    for ex_ in g.ex:
        exn = (ex_ - cx) / u
        gain *= 1 - 0.13 * np.exp(-((xn - exn) ** 2 / (2 * 0.13 ** 2) + (yn - ey + 0.05) ** 2 / (2 * 0.09 ** 2)))
    nose = (g.ny - cy) / u
    gain *= 1 + 0.06 * np.exp(-(xn ** 2) / (2 * 0.05 ** 2)) * ((yn > ey) & (yn < nose - 0.05))
    gain *= 1 - 0.12 * np.exp(-(xn ** 2 / (2 * 0.09 ** 2) + (yn - nose - 0.07) ** 2 / (2 * 0.035 ** 2)))  # under nose
    gain *= 1 + 0.05 * np.exp(-((np.abs(xn) - 0.42) ** 2 / (2 * 0.12 ** 2) + (yn - 0.12) ** 2 / (2 * 0.1 ** 2)))
    tex = skin[None, None, :] * gain[..., None]
    blush = np.exp(-((np.abs(xn) - 0.42) ** 2 / (2 * 0.11 ** 2) + (yn - 0.2) ** 2 / (2 * 0.09 ** 2)))
    tex += blush[..., None] * np.array([8.0, -5.0, -3.0]) * (0.3 if app.sex == "male" else 0.8)
    if app.beard > 0:
        my = (g.my - cy) / u
        edge = nose + 0.1 - 0.3 * np.clip(np.abs(xn) / an, 0, 1) ** 2   # up along the cheeks to the sideburns
        mask = _smoothstep((yn - edge) / 0.14) * (1 - 0.6 * _smoothstep((np.abs(xn) - 0.95 * an) / 0.1))
        mask *= 1 - 0.7 * np.exp(-(xn ** 2 / (2 * 0.25 ** 2) + (yn - my) ** 2 / (2 * 0.05 ** 2)))  # lips themselves
        shade = np.array([70.0, 62.0, 60.0]) * (skin.mean() / 200)
        tex = tex * (1 - 0.3 * app.beard * mask[..., None]) + shade * (0.3 * app.beard * mask[..., None])
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    roi = (y0, y1, x0, x1)
    # the face itself
    fx, fy = g.outline(u, app.jaw_taper)
    _blend_poly(base, tex, roi, fx, fy)

    # front hair
    hx = np.linspace(-1.12, 1.12, 25)
    line_x = cx + hx * a
    line_y = cy - u * _hairline_profile(app, hx)
    phi = np.linspace(2 * np.pi, np.pi, 25)
    dome_x = cx + hw * np.cos(phi) * 1.0
    dome_y = (cy - 0.12 * u) + (u * (0.98 + vol)) * np.sin(phi)
    dome_y = np.minimum(dome_y, cy - 0.3 * u)
    _fill(base, np.r_[dome_x, line_x], np.r_[dome_y, line_y], hair)
    if app.hair_length > 0.3:  # strands falling in front of the ears and the sides of the face
        L = cy + app.hair_length * u
        for side in (-1, 1):
            t = np.linspace(0, 1, 12)
            inner = cx + side * a * (0.9 + 0.12 * t)
            iy = (cy - 0.42 * u) + t * (min(L, cy + 0.85 * u) - (cy - 0.42 * u))
            outer_x = cx + side * hw * (1.02 + 0.02 * t)
            oy = (cy - 0.42 * u) + t * (L - (cy - 0.42 * u))
            _fill(base, np.r_[inner, outer_x[::-1]], np.r_[iy, oy[::-1]], hair * 0.95)
    else:  # sideburns
        for side in (-1, 1):
            sx = cx + side * np.array([0.84, 0.95, 0.99, 0.95, 0.9]) * a
            sy_ = cy + np.array([-0.5, -0.56, -0.3, -0.08, -0.1]) * u
            _fill(base, sx, sy_, hair)
    # hair sheen and a few strands
    sheen_side = -1 if math.cos(app.light_angle) < 0 else 1
    t = np.linspace(-0.7, 0.7, 12)
    _line(base, cx + (t + 0.2 * sheen_side) * hw * 0.8, top_y + u * (0.14 + 0.3 * t ** 2),
          np.clip(hair * 1.25 + 18, 0, 255), max(1.0, 2.0 * g.px))
    for k_ in (-0.45, -0.1, 0.3):
        t = np.linspace(0, 1, 6)
        _soft_line(base, cx + (k_ + 0.12 * t) * hw, top_y + u * (0.12 + 0.22 * t), hair * 0.6, hair, 0.5, g.px)
    return base, tex, roi


def _blend_poly(img, tex, roi, x, y):
    """Composite ``tex`` (an ROI-sized image) into ``img`` inside an anti-aliased polygon."""
    y0, y1, x0, x1 = roi
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [_xy(x - x0, y - y0)], 255, _AA, _SHIFT)
    region = img[y0:y1, x0:x1]
    alpha = mask[..., None].astype(np.float32) * (1 / 255)
    region[:] = (region + (tex.astype(np.float32) - region) * alpha + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------
# time courses


def _smooth_noise(rng, n: int, k: int, scale_frames: float) -> np.ndarray:
    """(n, k) smooth zero-mean noise with unit variance, correlation length ~``scale_frames``."""
    half = int(2 * scale_frames)
    kern = np.exp(-0.5 * (np.arange(-half, half + 1) / max(scale_frames, 1e-3)) ** 2)
    kern /= np.sqrt(np.sum(kern ** 2))  # unit variance for white input, whatever the clip length
    z = rng.normal(0, 1, (n + 2 * half, k))
    return np.stack([np.convolve(z[:, j], kern, mode="valid") for j in range(k)], 1)[:n]


def _envelope(rng, n: int, onset: float, offset: float) -> np.ndarray:
    """Expression strength over the clip: 0 at the start, ramp to 1 around ``onset``, partial relax after ``offset``."""
    t = (np.arange(n) + 0.5) / max(n, 1)
    start = onset * rng.uniform(0.25, 0.55)
    peak = min(onset * rng.uniform(1.0, 1.25) + 0.03, offset - 0.02)
    ramp = _smoothstep((t - start) / max(peak - start, 1e-3))
    relax_to = rng.uniform(0.35, 0.65)
    off = offset * rng.uniform(0.97, 1.03)
    relax = 1 - (1 - relax_to) * _smoothstep((t - off) / max(1 - off, 1e-3))
    return ramp * relax


def _default_speech(rng, n: int, onset: float, offset: float) -> np.ndarray:
    """A syllable-rate (~4 Hz) mouth envelope while speaking, used when no ``mouth_open`` is given."""
    t = np.arange(n) / FPS
    syl = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3.5, 4.5) * t + rng.uniform(0, 2 * np.pi))
    syl = syl * (0.6 + 0.4 * np.clip(_smooth_noise(rng, n, 1, 4)[:, 0], -1, 1))
    frac = (np.arange(n) + 0.5) / max(n, 1)
    talk = _smoothstep((frac - onset * 0.8) / 0.05) * (1 - _smoothstep((frac - offset) / 0.05))
    return np.clip(syl * talk, 0, 1)


def _blinks(rng, n: int, rate: float) -> np.ndarray:
    """Eye closure 0–1 per frame: blinks at random (Poisson) times, ~170 ms each."""
    closure = np.zeros(n)
    shape = np.array([0.25, 0.7, 1.0, 0.85, 0.5, 0.2])
    t = rng.exponential(1 / rate) * FPS * rng.uniform(0.2, 1.0)
    while t < n:
        i = int(t)
        seg = shape[: max(0, min(len(shape), n - i))]
        closure[i : i + len(seg)] = np.maximum(closure[i : i + len(seg)], seg)
        t += max(len(shape) + 2, rng.exponential(1 / rate) * FPS)
    return closure


# ----------------------------------------------------------------------------------------------------------
# per-frame drawing (kept lean: about 40 OpenCV calls on small point arrays per frame)

_BZ8 = np.stack([(1 - np.linspace(0, 1, 8)) ** 2, 2 * (1 - np.linspace(0, 1, 8)) * np.linspace(0, 1, 8),
                 np.linspace(0, 1, 8) ** 2])
_BZ12 = np.stack([(1 - np.linspace(0, 1, 12)) ** 2, 2 * (1 - np.linspace(0, 1, 12)) * np.linspace(0, 1, 12),
                  np.linspace(0, 1, 12) ** 2])
_BROW_TH = np.linspace(1.0, 0.45, 12)
_EYE_UP = (1 - _S_EYE ** 2) ** 0.55 * (1 + 0.1 * _S_EYE)
_EYE_LO = (1 - _S_EYE ** 2) ** 0.75
_EYE_CREASE = (1 - _S_EYE ** 2) ** 0.5
_COS, _SIN = np.cos(_THETA), np.sin(_THETA)
_M_PROF6 = (1 - _S_MOUTH ** 2) ** 0.6
_M_BOW = 0.85 + 0.3 * np.exp(-(((np.abs(_S_MOUTH) - 0.22) / 0.15) ** 2))
_M_ABS18 = np.abs(_S_MOUTH) ** 1.8
_M_KEEP = np.abs(_S_MOUTH) < 0.82
_M_TEETH = np.clip(1 - np.abs(_S_MOUTH[_M_KEEP]) ** 3, 0, 1)
_WAVE9 = np.cos(np.linspace(0, 2 * np.pi, 9))
_LIN9 = np.linspace(-0.33, 0.33, 9)
_LIN5 = np.linspace(-1, 1, 5)


def _mix(c0, c1, t: float) -> tuple[float, float, float]:
    return (c0[0] + (c1[0] - c0[0]) * t, c0[1] + (c1[1] - c0[1]) * t, c0[2] + (c1[2] - c0[2]) * t)


def _scale(c, f: float) -> tuple[float, float, float]:
    return (min(255.0, c[0] * f), min(255.0, c[1] * f), min(255.0, c[2] * f))


class _Clip:
    """Everything per clip that the per-frame drawing needs: geometry, colours (exposure applied), layers."""

    def __init__(self, app: Appearance, g: _Geometry, expo: np.ndarray):
        self.app, self.g = app, g
        e = tuple(float(v) for v in expo)
        ex = lambda c, f=1.0: (c[0] * f * e[0], c[1] * f * e[1], c[2] * f * e[2])  # noqa: E731
        skin, hair = app.skin, app.hair_colour
        gc = g.gain(g.cx, g.ey)
        self.skin = ex(skin, gc)
        self.dark = ex(skin, 0.42 * gc)
        brow = tuple(min(hc * 0.85, sc * 0.5) for hc, sc in zip(hair, skin))
        self.brow = [ex(brow, g.gain(x, g.ey)) for x in g.ex]
        self.sclera = [ex((236.0, 232.0, 226.0), min(1.05, g.gain(x, g.ey))) for x in g.ex]
        self.iris = [ex(app.iris_colour, g.gain(x, g.ey)) for x in g.ex]
        self.pupil = ex((18.0, 14.0, 14.0))
        self.lash = ex((30.0, 22.0, 20.0))
        self.white = ex((250.0, 250.0, 250.0))
        gm = g.gain(g.cx, g.my)
        self.lip = ex(app.lip_colour, gm)
        self.lip_hi = _mix(self.lip, _scale(self.lip, 1.25), 0.5)
        self.lip_line = ex(app.lip_colour, 0.45 * gm)
        self.mouth_in = ex((70.0, 28.0, 30.0), gm)
        self.teeth = ex((238.0, 234.0, 222.0), gm)
        self.teeth_lo = ex((215.0, 210.0, 198.0), gm)
        gn = g.gain(g.cx, g.ny)
        self.nostril = ex(skin, 0.4 * gn)
        self.ala = _mix(ex(skin, gn), self.dark, 0.6)
        self.skin_m = ex(skin, gm)
        self.px1 = max(1, int(round(g.px)))
        self.lash_t = max(1, int(round(0.028 * g.u)))
        self.lash_t2 = max(1, int(round(0.022 * g.u)))
        self.lipline_t = max(1, int(round(0.022 * g.u)))
        self.fold_t = max(1, int(round(1.2 * g.px)))
        u, a = g.u, g.a
        # lower face outline for the dropping jaw: below the mouth the outline stretches down, most at the chin
        phi = np.linspace(0.0, np.pi, 41)
        jr = np.sin(phi)
        self.jaw_top = app.mouth_y - 0.08
        keep = jr >= self.jaw_top
        self.jaw_x = g.cx + np.clip(a * np.cos(phi) * (1 - app.jaw_taper * jr ** 2), -0.86 * a, 0.86 * a)[keep]
        self.jaw_r = jr[keep]
        self.jaw_w = ((self.jaw_r - self.jaw_top) / (1 - self.jaw_top)) ** 1.5
        self.side = 1 if g.light[0] < 0 else -1
        # soft area shading that survives heavy downsampling: frown, cheek apples, corner depressors
        self.spr_glabella = _gauss_sprite(0.13 * u, 0.05 * u)
        self.spr_cheek = _gauss_sprite(0.12 * u, 0.08 * u)
        self.spr_corner = _gauss_sprite(0.055 * u, 0.07 * u)
        self.shadow = np.array(ex(skin, 0.5 * gc), np.float32)
        self.glow = np.array([min(255.0, v * 1.2 + 10) for v in ex(skin, gc)], np.float32)

    def set_texture(self, tex: np.ndarray, roi) -> None:
        """Keep the part of the shaded skin the dropping jaw can uncover (below the nose, inside the cheeks)."""
        g = self.g
        ty0, ty1, tx0, tx1 = roi
        y0 = int(min(max(ty0, g.cy + self.jaw_top * g.u - 1), ty1 - 1))
        y1 = int(min(ty1, g.cy + 1.6 * g.u + 2))
        x0 = int(min(max(tx0, self.jaw_x.min() - 1), tx1 - 1))
        x1 = int(min(tx1, self.jaw_x.max() + 2))
        self.jaw_roi = (y0, max(y1, y0 + 1), x0, max(x1, x0 + 1))
        self.jaw_tex = np.ascontiguousarray(tex[y0 - ty0 : max(y1, y0 + 1) - ty0, x0 - tx0 : max(x1, x0 + 1) - tx0])

    def line_colour(self, strength: float) -> tuple[float, float, float]:
        return _mix(self.skin, self.dark, min(1.0, strength))


def _gauss_sprite(sx: float, sy: float) -> np.ndarray:
    """A Gaussian alpha blob (peak 1) with standard deviations ``sx``, ``sy`` pixels."""
    rx, ry = max(1, int(np.ceil(2.2 * sx))), max(1, int(np.ceil(2.2 * sy)))
    yy, xx = np.mgrid[-ry : ry + 1, -rx : rx + 1].astype(np.float32)
    return np.exp(-0.5 * ((xx / max(sx, 0.3)) ** 2 + (yy / max(sy, 0.3)) ** 2))[..., None]


def _blob(img, sprite: np.ndarray, x: float, y: float, colour: np.ndarray, k: float) -> None:
    """Soft shading: pull the pixels under a Gaussian blob toward ``colour`` by up to ``k``."""
    if k <= 0.01:
        return
    h, w = sprite.shape[:2]
    x0, y0 = int(round(x)) - w // 2, int(round(y)) - h // 2
    ax0, ay0 = max(0, x0), max(0, y0)
    ax1, ay1 = min(img.shape[1], x0 + w), min(img.shape[0], y0 + h)
    if ax1 <= ax0 or ay1 <= ay0:
        return
    region = img[ay0:ay1, ax0:ax1]
    alpha = sprite[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0] * min(k, 1.0)
    region[:] = (region + (colour - region) * alpha + 0.5).astype(np.uint8)


def _lines(img, curves, colour, thickness: int):
    cv2.polylines(img, curves, False, colour, thickness, _AA, _SHIFT)


def _draw_features(img, c: _Clip, tex, roi, au: np.ndarray, closure: float, gaze: float):
    app, g = c.app, c.g
    u, a, cx, px = g.u, g.a, g.cx, g.px
    (inner_up, outer_up, lower, lid_up, tighten, cheek, wrinkle, ulip, corner_up, corner_down, stretch, press,
     jaw) = au.tolist()
    p_inner, p_outer, p_lower = max(inner_up, 0.0), max(outer_up, 0.0), max(lower, 0.0)
    p_tight, p_cheek, p_wr, p_ulip = max(tighten, 0.0), max(cheek, 0.0), max(wrinkle, 0.0), max(ulip, 0.0)
    p_cu, p_cd, p_str, p_press, p_jaw = max(corner_up, 0.0), max(corner_down, 0.0), max(stretch, 0.0), max(press, 0.0), max(jaw, 0.0)
    px1 = c.px1

    # --- jaw: the lower face stretches down as the jaw drops
    open_px = u * 0.36 * p_jaw
    if open_px > 0.3:
        _blend_poly(img, c.jaw_tex, c.jaw_roi, c.jaw_x, g.cy + u * c.jaw_r + 0.85 * open_px * c.jaw_w)

    # --- brows (AU1, AU2, AU4)
    bt = app.brow_thickness * u
    by = g.ey - app.brow_height * u
    top = 1e9
    brows = []
    for i, d in ((0, 1), (1, -1)):  # d: towards the nose
        ex = g.ex[i]
        ix = ex + d * (0.95 * g.ew + 0.06 * u * p_lower + 0.015 * u * p_inner)
        iy = min(by - 0.18 * u * inner_up + 0.12 * u * lower, g.ey - 0.62 * g.ew)  # brows stop at the lids
        ox = ex - d * 1.25 * g.ew
        oy = by + 0.04 * u - 0.16 * u * outer_up + 0.04 * u * lower - 0.02 * u * p_inner
        mx = ex - d * 0.35 * g.ew
        my = 0.5 * (iy + oy) - 0.05 * u - 0.04 * u * p_outer + 0.015 * u * p_inner
        xs = _BZ12[0] * ix + _BZ12[1] * mx + _BZ12[2] * ox
        ys = _BZ12[0] * iy + _BZ12[1] * my + _BZ12[2] * oy
        th = bt * _BROW_TH
        cv2.fillPoly(img, [_xy(_cat(xs, xs[::-1]), _cat(ys - 0.65 * th, (ys + 0.5 * th)[::-1]))], c.brow[i], _AA, _SHIFT)
        top = min(top, iy, my, oy)
        brows.append((ix, iy))
    top -= bt
    _blob(img, c.spr_glabella, cx, by + 0.05 * u, c.shadow, 0.22 * p_lower + 0.15 * p_wr)
    if lower > 0.15:  # frown lines between the brows
        curves = [_xy(cx + d * np.array([0.045, 0.04, 0.05]) * u, by + 0.1 * u * lower + np.array([-0.03, 0.04, 0.11]) * u)
                  for d in (-1, 1)]
        _lines(img, curves, c.line_colour(0.35 * min(lower, 1.5)), c.fold_t)
    raise_ = 0.5 * (p_inner + p_outer)
    if raise_ > 0.2:  # forehead wrinkles
        xs = cx + _LIN9 * u
        hl = np.interp(xs, g.hair_x, g.hair_y) + 0.03 * u
        curves = []
        for k in range(3):
            ys = top - (0.06 + 0.055 * k) * u + 0.012 * u * _WAVE9
            ok = ys > hl
            if ok.sum() >= 3:
                curves.append(_xy(xs[ok], ys[ok]))
        if curves:
            _lines(img, curves, c.line_colour(0.28 * min(raise_ - 0.2, 1.0)), px1)

    # --- eyes (AU5, AU7, AU6, blinks)
    ew = g.ew
    hu = max(0.02 * ew, ew * 0.46 * (1 + 0.75 * lid_up - 0.3 * p_tight - 0.15 * p_cheek)) * (1 - closure)
    hl = ew * 0.26 * max(0.15, 1 - 0.45 * p_tight - 0.5 * p_cheek + 0.2 * max(lid_up, 0.0)) * (1 - 0.3 * closure)
    lash, faint, creases = [], [], []
    bulge = p_cheek + 0.5 * p_tight
    s = _S_EYE
    for i, d in ((0, 1), (1, -1)):
        ex = g.ex[i]
        x = ex + d * ew * s
        yc = g.ey + app.eye_tilt * ew * s
        up = yc - hu * _EYE_UP
        lo = yc + hl * _EYE_LO
        if hu + hl > 0.6:
            cv2.fillPoly(img, [_xy(_cat(x, x[::-1]), _cat(up, lo[::-1]))], c.sclera[i], _AA, _SHIFT)
            ir = 0.47 * ew
            ix = ex + gaze * ew * 0.15
            iy = g.ey + 0.06 * ew
            sp = (ix + ir * _COS - ex) / (d * ew)
            lo_i, up_i = np.interp(sp, s, up), np.interp(sp, s, lo)
            for r, colour in ((ir, c.iris[i]), (0.45 * ir, c.pupil)):
                if r is not ir:
                    sp = (ix + r * _COS - ex) / (d * ew)
                    lo_i, up_i = np.interp(sp, s, up), np.interp(sp, s, lo)
                py = np.minimum(np.maximum(iy + r * _SIN, lo_i), up_i)
                if py.max() - py.min() > 0.3:
                    cv2.fillPoly(img, [_xy(ix + r * _COS, py)], colour, _AA, _SHIFT)
            cl_x, cl_y = ix - 0.25 * ir, iy - 0.3 * ir
            if np.interp((cl_x - ex) / (d * ew), s, up) < cl_y:
                rr = max(1, int(round(0.12 * ir * _ONE)))
                cv2.circle(img, (int(round(cl_x * _ONE)), int(round(cl_y * _ONE))), rr, c.white, -1, _AA, _SHIFT)
        lash.append(_xy(x, up))
        k = 0.025 * ew * (1 - closure)
        lash.append(_xy(x[:4], up[:4] - np.array([k, k * 2 / 3, k / 3, 0.0])))
        crease = np.minimum(yc - (0.78 + 0.12 * max(lid_up, 0.0) - 0.15 * max(-lid_up, 0.0)) * ew * _EYE_CREASE, up - 0.12 * ew)
        creases.append(_xy(x[2:-2], crease[2:-2]))
        faint.append(_xy(x[1:-1], lo[1:-1]))
        if bulge > 0.1:
            _lines(img, [_xy(x[3:-3], lo[3:-3] + 0.28 * ew)], c.line_colour(0.3 * min(bulge, 1.5)), px1)
        if lid_up < -0.2 or inner_up > 0.4:  # tired/sad: a faint bag under the eye
            faint.append(_xy(x[4:-2], lo[4:-2] + 0.4 * ew))
    _lines(img, creases, c.line_colour(0.45), px1)
    _lines(img, faint, c.line_colour(0.25), px1)
    _lines(img, lash[0::2], c.lash, c.lash_t)
    _lines(img, lash[1::2], c.lash, c.lash_t2)

    # --- nose (AU9)
    lift = 0.035 * u * p_wr
    nw = 0.1 * u * (1 + 0.25 * p_wr + 0.08 * p_str)
    ny = g.ny - lift
    for d in (-1, 1):
        _ellipse(img, cx + d * 0.055 * u, ny + 0.02 * u, 0.032 * u, 0.015 * u, c.nostril, angle=d * 18)
        _ellipse(img, cx + d * nw * 0.78, ny - 0.005 * u, 0.045 * u, 0.05 * u, c.ala, thickness=px1,
                 a0=-70 if d > 0 else 200, a1=50 if d > 0 else 320)
    nose_lines = [_xy(cx + np.array([-0.035, 0, 0.035]) * u, ny + np.array([0.03, 0.045, 0.03]) * u)]
    _lines(img, nose_lines, c.line_colour(0.35), px1)
    _lines(img, [_xy(cx + c.side * np.array([0.06, 0.07, 0.085]) * u,
                     np.array([g.ey + 0.05 * u, (g.ey + ny) / 2, ny - 0.07 * u]))], c.line_colour(0.25), px1)
    if wrinkle > 0.12:
        xs = cx + 0.07 * u * _LIN5
        curves = [_xy(xs, g.ey + 0.04 * k * u - 0.01 * u * np.cos(1.5 * _LIN5)) for k in range(3)]
        _lines(img, curves, c.line_colour(0.4 * min(wrinkle, 1.5)), px1)

    # --- mouth (AU10, AU12, AU15, AU20, AU23/24, AU26)
    mw = u * app.mouth_width * (1 + 0.22 * corner_up + 0.3 * stretch - 0.2 * p_press - 0.12 * p_jaw + 0.05 * p_ulip)
    c_off = u * (-0.085 * corner_up + 0.075 * corner_down + 0.015 * p_str)
    ulr = u * 0.055 * p_ulip
    gap = max(0.0, open_px + u * (0.025 * max(stretch - 0.3, 0.0) + 0.03 * max(ulip - 0.2, 0.0) - 0.02 * p_press) - 0.01 * u)
    tu = u * app.lip_thickness * max(0.25, 1 - 0.6 * p_press - 0.08 * p_cu - 0.2 * p_str)
    tl = tu * 1.25
    s = _S_MOUTH
    x = cx + mw * s
    sq = 2.0 + 2.5 * p_str + 1.5 * p_ulip  # a stretched mouth is squarer
    prof = np.sqrt(np.clip(1 - np.abs(s) ** sq, 0, 1))
    in_up = g.my + (c_off + 0.3 * gap) * _M_ABS18 - ulr * prof
    in_lo = in_up + gap * prof
    out_up = in_up - tu * _M_PROF6 * _M_BOW
    out_lo = in_lo + tl * _M_PROF6
    for d in (-1, 1):
        _blob(img, c.spr_cheek, cx + d * 0.42 * u, g.cy + (0.16 - 0.07 * p_cheek) * u, c.glow, 0.45 * p_cheek)
        _blob(img, c.spr_corner, cx + d * 0.9 * mw, g.my + c_off + 0.07 * u, c.shadow, 0.25 * p_cd)
    # nasolabial folds (cheek raise, smile, upper-lip raise)
    fold = 0.06 + 0.25 * p_cheek + 0.15 * p_cu + 0.3 * p_ulip + 0.08 * p_str
    folds = []
    for d in (-1, 1):
        p0 = (cx + d * (nw + 0.02 * u), ny - 0.03 * u)
        p1 = (cx + d * (nw + 0.17 * u + 0.05 * u * p_cu), ny + 0.08 * u)
        p2 = (cx + d * (mw + 0.05 * u + 0.02 * u * p_cheek), g.my + c_off + 0.07 * u + 0.5 * gap)
        folds.append(_xy(_BZ8[0] * p0[0] + _BZ8[1] * p1[0] + _BZ8[2] * p2[0],
                         _BZ8[0] * p0[1] + _BZ8[1] * p1[1] + _BZ8[2] * p2[1]))
    _lines(img, folds, c.line_colour(min(0.45, fold)), c.fold_t)
    cv2.fillPoly(img, [_xy(_cat(x, x[::-1]), _cat(out_up, out_lo[::-1]))], c.lip, _AA, _SHIFT)
    _lines(img, [_xy(x[6:-6], (in_lo + 0.55 * tl * _M_PROF6)[6:-6])], c.lip_hi, px1)
    if gap > 0.5:
        cv2.fillPoly(img, [_xy(_cat(x, x[::-1]), _cat(in_up, in_lo[::-1]))], c.mouth_in, _AA, _SHIFT)
        th = min(0.075 * u, gap)
        xk = x[_M_KEEP]
        t_top = in_up[_M_KEEP]
        t_bot = np.minimum(t_top + th * _M_TEETH ** 0.3, in_lo[_M_KEEP])
        cv2.fillPoly(img, [_xy(_cat(xk, xk[::-1]), _cat(t_top, t_bot[::-1]))], c.teeth, _AA, _SHIFT)
        if gap > 0.1 * u:
            lb = in_lo[_M_KEEP]
            lt = np.maximum(lb - 0.04 * u * _M_TEETH, t_bot)
            cv2.fillPoly(img, [_xy(_cat(xk, xk[::-1]), _cat(lt, lb[::-1]))], c.teeth_lo, _AA, _SHIFT)
        _lines(img, [_xy(x, in_up)], c.lip_line, c.lipline_t)
    else:
        _lines(img, [_xy(x, 0.5 * (in_up + in_lo))], c.lip_line, c.lipline_t)
    extra = []
    if corner_up > 0.25 or corner_down > 0.3:  # corner creases
        sgn = -1 if corner_up > corner_down else 1
        cyp = g.my + c_off + 0.3 * gap
        for d in (-1, 1):
            cxp = cx + d * (mw + 0.015 * u)
            extra.append(_xy(np.array([cxp - d * 0.01 * u, cxp, cxp - d * 0.005 * u]),
                             np.array([cyp + sgn * 0.04 * u, cyp, cyp - sgn * 0.03 * u])))
        _lines(img, extra, c.line_colour(0.3), px1)
    # chin crease below the lower lip
    yb = out_lo[len(s) // 2] + 0.08 * u + 0.02 * u * p_press
    _lines(img, [_xy(cx + 0.1 * u * _LIN5, yb + 0.012 * u * np.array([1, 0.3, 0, 0.3, 1]))],
           c.line_colour(0.2 + 0.25 * p_press + 0.15 * p_cd), px1)


# ----------------------------------------------------------------------------------------------------------
# public entry point


def render_face_video(
    actor: int,
    emotion: str,
    intensity: int,
    n_frames: int,
    size: tuple[int, int] = (640, 360),
    seed: int = 0,
    mouth_open: np.ndarray | None = None,
    onset: float = 0.2,
    offset: float = 0.9,
    *,
    variant: int = 0,
) -> np.ndarray:
    """Draw one clip of an actor showing an emotion: uint8 RGB frames (n_frames, H, W, 3).

    Args:
        actor: 1–24 as in RAVDESS (odd = male, even = female); 25–99 give further synthetic actors.
        emotion: one of :data:`EMOTIONS`.
        intensity: 1 (normal) or 2 (strong; not for neutral).
        n_frames: number of frames (30 fps).
        size: (width, height), from 160×90 to 1280×720, about 16:9.
        seed: corpus seed; with the actor it fixes the actor's appearance (:func:`actor_appearance`).
        mouth_open: per-frame speech envelope in [0, 1] that opens the jaw while talking; resampled
            linearly if its length differs from ``n_frames``. ``None`` uses a synthetic ~4 Hz syllable
            envelope between ``onset`` and ``offset``. The envelope also enters the clip's random key,
            so two takes with different audio get different expression noise.
        onset, offset: fractions of the clip where the expression reaches its peak and starts to relax.
        variant: extra key for the clip's randomness (e.g. statement/repetition), default 0.
    """
    label = _check_emotion(emotion)
    intensity = _check_intensity(intensity, label)
    w, h = _check_size(size)
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or int(n_frames) < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    n = int(n_frames)
    if not (0.0 <= onset < offset <= 1.0):
        raise ValueError(f"need 0 <= onset < offset <= 1, got onset={onset!r}, offset={offset!r}")
    key = [int(seed) & 0xFFFFFFFF, _check_actor(actor), label, intensity, n, int(variant) & 0xFFFFFFFF]
    if mouth_open is not None:
        env = np.asarray(mouth_open, dtype=np.float64).reshape(-1)
        if env.size == 0 or not np.all(np.isfinite(env)):
            raise ValueError("mouth_open must be a non-empty, finite 1-D array of values in [0, 1]")
        if env.size != n:
            env = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, env.size), env)
        env = np.clip(env, 0.0, 1.0)
        key.append(zlib.crc32(np.round(env * 255).astype(np.uint8).tobytes()))
    app = actor_appearance(actor, seed)
    rng = np.random.default_rng(np.random.SeedSequence(key))
    if mouth_open is None:
        env = _default_speech(rng, n, onset, offset)

    # clip-level pose and exposure
    geo = _Geometry(app, w, h, dx=rng.normal(0, _POSE_SIGMA[0]) * h, dy=rng.normal(0, _POSE_SIGMA[1]) * h,
                    scale=float(np.exp(rng.normal(0, _POSE_SIGMA[2]))))
    expo = np.exp(rng.normal(0, 0.025)) * np.exp(rng.normal(0, 0.01, 3))
    base, tex, roi = _static_layers(app, geo)
    base = np.clip(base * expo[None, None, :] + 0.5, 0, 255).astype(np.uint8)
    tex = np.clip(tex * expo[None, None, :] + 0.5, 0, 255).astype(np.uint8)
    clip = _Clip(app, geo, expo)
    clip.set_texture(tex, roi)

    # action units over time
    n_au = len(ACTION_UNITS)
    peak = expression_peak(EMOTIONS[label], intensity) * np.array(app.au_gain) * app.expressiveness
    noise = rng.normal(0, _CLIP_AU_NOISE, n_au)
    noise[_AU["jaw_drop"]] *= 0.5  # the jaw also moves with speech; keep resting mouths mostly closed
    peak = peak * np.exp(rng.normal(0, _CLIP_GAIN_SIGMA)) + noise
    strength = _envelope(rng, n, onset, offset)
    au = np.array(app.au_rest)[None, :] + strength[:, None] * peak[None, :]
    au += _MICRO_NOISE * _smooth_noise(rng, n, n_au, 6.0)
    art = _smooth_noise(rng, n, 2, 2.0)  # articulation: lips stretch/round with the syllables
    au[:, _AU["jaw_drop"]] += app.speech_jaw * env * (1 + 0.25 * art[:, 0])
    au[:, _AU["lip_stretch"]] += 0.25 * env * art[:, 1]
    au[:, _AU["jaw_drop"]] = np.clip(au[:, _AU["jaw_drop"]], 0, 1.8)
    au = np.clip(au, -1.0, 2.5)
    closure = _blinks(rng, n, app.blink_rate * (0.55 if label == 1 else 1.0))
    gaze = 0.5 * np.clip(_smooth_noise(rng, n, 1, 20.0)[:, 0], -1.5, 1.5)

    # head motion: translation (pixels) and roll (degrees) about the base of the neck, applied to the head
    # region only (the shoulders stay), feathered into the static frame above the collar
    mot = _smooth_noise(rng, n, 3, 12.0) * np.array([0.005 * h, 0.003 * h, 1.0]) * _HEAD_MOTION * app.motion
    mot[:, 1] += 0.003 * h * env * app.motion  # a small nod with the speech
    u, cx, cy = geo.u, geo.cx, geo.cy
    hw = geo.a * (1.12 + 0.4 * app.hair_volume) + 0.2 * u
    hx0, hx1 = int(max(0, cx - hw)), int(min(w, cx + hw + 1))
    hy0, hy1 = int(max(0, cy - u * (1.45 + app.hair_volume))), int(min(h, cy + 1.6 * u))
    feather_rows = max(1, min(hy1 - hy0 - 1, int(0.3 * u)))
    fade = ((np.arange(feather_rows, dtype=np.float32) + 0.5) / feather_rows)[:, None, None]  # 0 → 1 = static
    pivot = (cx - hx0, cy + 1.6 * u - hy0)
    # exposure drift over time (whole frame): a slow, random-amplitude brightness wobble
    drift = 1 + rng.uniform(0.0, 0.012) * _smooth_noise(rng, n, 1, 25.0)[:, 0]
    ramp = np.arange(256, dtype=np.float64)

    out = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        frame = out[t]
        lut = np.clip(ramp * drift[t] + 0.5, 0, 255).astype(np.uint8)
        cv2.LUT(base, lut, dst=frame)  # copy the static layer with this frame's exposure
        _draw_features(frame, clip, tex, roi, au[t], float(closure[t]), float(gaze[t]))
        m = cv2.getRotationMatrix2D(pivot, float(mot[t, 2]), 1.0)
        m[0, 2] += mot[t, 0]
        m[1, 2] += mot[t, 1]
        head = frame[hy0:hy1, hx0:hx1]
        moved = cv2.warpAffine(head, m, (hx1 - hx0, hy1 - hy0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        split = hy1 - hy0 - feather_rows
        head[:split] = moved[:split]
        tail = head[split:]
        tail[:] = (moved[split:] + (tail.astype(np.float32) - moved[split:]) * fade + 0.5).astype(np.uint8)
    return out


def contact_sheet(actors=(1, 2), size: tuple[int, int] = (320, 180), seed: int = 0, intensity: int = 2,
                  n_frames: int = 60, labels: bool = True) -> np.ndarray:
    """One row per actor, one column per emotion: the expression peak (a square centre crop), uint8 RGB.

    Neutral is shown at intensity 1 (RAVDESS has no strong neutral); the mouth is closed (no speech).
    """
    w, h = _check_size(size)
    rows = []
    for actor in actors:
        row = []
        for emotion in EMOTIONS:
            level = 1 if emotion == "neutral" else intensity
            frames = render_face_video(actor, emotion, level, n_frames, size=(w, h), seed=seed,
                                       mouth_open=np.zeros(n_frames))
            tile = np.ascontiguousarray(frames[int(0.6 * n_frames)][:, (w - h) // 2 : (w - h) // 2 + h])
            if labels:
                scale = h / 360
                cv2.putText(tile, f"{actor}: {emotion}", (int(6 * scale) + 2, int(24 * scale) + 8),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale + 0.15, (200, 30, 30), 1, cv2.LINE_AA)
            row.append(tile)
        rows.append(np.concatenate(row, 1))
    return np.concatenate(rows, 0)
