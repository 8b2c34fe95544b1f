"""Synthetic RAVDESS speech: the two RAVDESS sentences spoken by 24 synthetic actors in 8 emotions.

Notebook: 00_data_tour.ipynb

The real RAVDESS corpus cannot ship with merlib (CC BY-NC-SA), so the built-in corpus is generated
offline. This module makes the *speech* of one clip; :mod:`merlib.data.synthetic` turns it into the
RAVDESS files (wav, and the AAC track of the mp4 beside a drawn face).

How a clip is made
------------------
1. **Text to speech.** Praat's built-in eSpeak synthesizer (through ``praat-parselmouth``, fully
   offline) speaks the sentence in the actor's eSpeak voice variant (American English, like RAVDESS's
   Toronto actors), at neutral settings.
2. **Voice.** Every actor has a :class:`Voice` (:func:`actor_voice`): sex from the actor number (odd =
   male, as in RAVDESS), median F0, F0 range, a formant (vocal-tract length) shift, speaking rate,
   pauses, breathiness, spectral tilt, loudness and how expressive the actor is. The formant shift is
   done the way Praat's ``Change gender`` does it (play the sound faster, then restore pitch and
   duration with PSOLA), folded into the single PSOLA pass below.
3. **Emotion prosody** (:data:`EMOTION_PROSODY`): F0 level and range, an utterance-final pitch
   movement (the rise of surprise, the fall of anger and sadness), speaking rate, pauses, loudness,
   spectral tilt (tense/bright vs lax/dark voice), breathiness, F0 tremor (fear), a creaky final F0
   drop (sadness, disgust) and a small articulatory formant shift (the smile of happiness). Values
   follow the direction of the classic acoustic profiles of vocal emotion (Scherer 1986; Banse &
   Scherer 1996; Juslin & Laukka 2003). Strong intensity multiplies each deviation from neutral by
   :data:`STRONG_GAIN`. Actors differ in how much (overall and per emotion) they express, and every
   take has its own jitter, so similar emotions (neutral/calm, happy/surprised, fearful/surprised) are
   confusable, as they are in RAVDESS.
4. **Pitch and timing** are imposed on a Praat ``Manipulation``: ``Formula`` on its pitch tier, a
   duration tier for the speaking rate and the pauses between words, resynthesised by overlap-add.
5. **Post-processing** in numpy: spectral tilt, breathiness (aspiration noise with the vocal-tract
   shape of the words), loudness, a leading (0.5-1.0 s) and trailing silence so the clip lasts
   3-4.5 s like RAVDESS, a -60 dBFS noise floor, peak <= 0.99 and resampling to ``sample_rate``
   (48 kHz, as RAVDESS) with :func:`scipy.signal.resample_poly`.

Reproducibility. Everything random comes from :class:`numpy.random.Generator` objects seeded by the
clip's fields (never the global RNG): the same arguments give bit-identical audio, in any process and
after any other work, and the two repetitions of an item differ a little in timing, pitch and loudness,
as real takes do. Two Praat details make this work: eSpeak keeps state between syntheses inside a
process, so the base utterances are rendered once in a fresh subprocess (~1 s on first use); and PSOLA
draws random numbers when it stretches unvoiced stretches, so Praat's RNG is seeded per take.

Calibration (``benchmarks/calibrate_speech.py``; checked in ``tests/test_synthetic_speech.py``).
Leave-one-actor-out logistic regression on pooled 64-bin log-mel statistics of the quick corpus
(actors 1-8, 16 clips each) recognises the emotion in 52-69 % of clips (mean+std over time; chance
12.5 %, seeds 0-2) and the sentence in 99-100 % (mean+std+max; mean+std alone gives 75-94 %, as the
sentences differ mostly in the short /s/ of "sitting"). ``_EXPRESSION_GAIN`` is the knob.
Speed: ~40 ms per clip on one core.

Example::

    from merlib.data.synthetic.speech import synthesize_speech, actor_voice
    actor_voice(2)                                   # Voice(actor=2, sex='female', ...)
    x = synthesize_speech(2, "angry", 2, 1, 1)       # float32, 48 kHz, ~3.5 s
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from dataclasses import dataclass
from math import gcd

import numpy as np
import parselmouth
from parselmouth.praat import call
from parselmouth.praat import run as praat_run
from scipy.signal import istft, lfilter, resample_poly, stft

__all__ = [
    "SENTENCES",
    "EMOTIONS",
    "EmotionProsody",
    "EMOTION_PROSODY",
    "STRONG_GAIN",
    "Voice",
    "actor_voice",
    "synthesize_speech",
]

SENTENCES: dict[int, str] = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
"""RAVDESS statements by statement code (01, 02)."""

EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
"""RAVDESS emotions in code order; the class label is the index (emotion code - 1)."""

# Internal working rate: eSpeak synthesises at 22.05 kHz (content below ~11 kHz); 24 kHz makes the
# final conversion to 48 kHz (x2) and 16 kHz (x2/3) cheap polyphase resampling.
_WORK_SR = 24000
_BASE_WPM = 165.0  # eSpeak words per minute of the base utterances (neutral, average actor)
_NEUTRAL_RMS_DBFS = -30.0  # active-speech RMS of a neutral take of an average actor
_NOISE_FLOOR_DBFS = -60.0
_PEAK = 0.99
_MAX_CLIP_S = 4.5
_BREATH_GAIN = 1.0  # level of the aspiration noise per unit of breathiness


@dataclass(frozen=True)
class EmotionProsody:
    """Acoustic profile of one emotion at *normal* intensity, relative to the speaker's neutral voice.

    Attributes:
        f0_st: F0 level change in semitones.
        f0_range: multiplier of the speaker's F0 excursions (in log frequency) around the median.
        final_st: pitch movement over the last word in semitones (+ rise, - fall).
        rate: speaking-rate multiplier (> 1 faster).
        gap_s: extra pause between words in seconds.
        level_db: loudness change in dB.
        tilt_db: spectral tilt change in dB above ~1 kHz (+ tense/bright, - lax/dark).
        breath: added breathiness (aspiration-noise level, 0 = none).
        tremor: F0 tremor depth as a fraction of F0 (a 5-8 Hz vibrato-like wobble).
        creak: utterance-final F0 drop towards creaky voice, as a fraction of F0.
        formant: formant scale factor (articulation: spread lips of a smile raise formants,
            a lowered larynx and lax articulation lower them).
    """

    f0_st: float = 0.0
    f0_range: float = 1.0
    final_st: float = 0.0
    rate: float = 1.0
    gap_s: float = 0.0
    level_db: float = 0.0
    tilt_db: float = 0.0
    breath: float = 0.0
    tremor: float = 0.0
    creak: float = 0.0
    formant: float = 1.0


# Directions follow Banse & Scherer (1996) and Juslin & Laukka (2003): hot anger and happiness are
# loud, bright, high and variable; fear is high, fast, narrow-ranged and trembling; sadness is low,
# slow, soft, monotonous, dark and breathy; calm is a softer, slower, slightly lower neutral;
# disgust is low, slow and creaky with falling contours; surprise is high with a wide range and a
# final rise. Magnitudes are moderate on purpose, so that the emotions are learnable but overlap.
EMOTION_PROSODY: dict[str, EmotionProsody] = {
    "neutral": EmotionProsody(),
    "calm": EmotionProsody(f0_st=-0.7, f0_range=0.85, final_st=-1.0, rate=0.93, gap_s=0.02,
                           level_db=-2.5, tilt_db=-1.0, breath=0.12, formant=0.99),
    "happy": EmotionProsody(f0_st=3.0, f0_range=1.35, final_st=1.0, rate=1.06, level_db=3.0,
                            tilt_db=1.5, breath=0.03, formant=1.04),
    "sad": EmotionProsody(f0_st=-1.5, f0_range=0.6, final_st=-2.0, rate=0.82, gap_s=0.06,
                          level_db=-5.0, tilt_db=-2.5, breath=0.3, creak=0.15, formant=0.98),
    "angry": EmotionProsody(f0_st=2.0, f0_range=1.25, final_st=-2.5, rate=1.07, level_db=6.0,
                            tilt_db=3.5, formant=1.02),
    "fearful": EmotionProsody(f0_st=4.5, f0_range=0.85, final_st=0.5, rate=1.14, gap_s=0.01,
                              level_db=1.0, tilt_db=0.5, breath=0.2, tremor=0.035),
    "disgust": EmotionProsody(f0_st=-1.0, f0_range=1.1, final_st=-3.0, rate=0.86, gap_s=0.04,
                              level_db=0.5, tilt_db=0.5, breath=0.05, creak=0.2, formant=0.98),
    "surprised": EmotionProsody(f0_st=4.0, f0_range=1.5, final_st=5.0, rate=1.0, level_db=2.5,
                                tilt_db=1.0, breath=0.1, formant=1.02),
}

STRONG_GAIN = 1.7
"""Strong intensity (RAVDESS code 02) multiplies every deviation from neutral by this factor."""

# Overall scale of the emotion deviations, the calibration knob of how learnable the emotions are
# (benchmarks/calibrate_speech.py; tests/test_synthetic_speech.py checks the resulting accuracy).
_EXPRESSION_GAIN = 1.4
_MAX_GAIN = 3.5  # the most exaggerated take of the most expressive actor stays plausible

_MALE_VARIANTS = ("Male1", "Male2", "Male3", "Male4", "Male5", "Male6", "Male7")
_FEMALE_VARIANTS = ("Female1", "Female2", "Female3", "Female4", "Female5")
_LANGUAGES = ("English (America)",)  # RAVDESS actors speak North American English


@dataclass(frozen=True)
class Voice:
    """One synthetic actor's voice (see :func:`actor_voice`).

    Attributes:
        actor: actor number (1-24 in RAVDESS; any positive int here).
        sex: ``"male"`` for odd actors, ``"female"`` for even ones.
        language: eSpeak language (American English, as RAVDESS's Toronto actors).
        variant: eSpeak voice variant (``"Male1"`` ... ``"Female5"``): the base timbre.
        f0_median: median F0 of neutral speech in Hz.
        f0_range: multiplier of the F0 excursions of the eSpeak intonation.
        formant_shift: formant (vocal-tract length) scale factor; > 1 = shorter tract.
        rate: speaking-rate multiplier (> 1 faster).
        word_gap: pause between words in seconds.
        breathiness: aspiration-noise level of the neutral voice.
        tilt_db: spectral tilt in dB above ~1 kHz of the neutral voice.
        level_db: loudness of the actor relative to the average actor.
        expressiveness: how strongly the actor expresses emotions (scales every deviation).
        emotion_gain: per-emotion expressiveness multipliers, in :data:`EMOTIONS` order (actors have
            emotions they portray well and others they under-play).
    """

    actor: int
    sex: str
    language: str
    variant: str
    f0_median: float
    f0_range: float
    formant_shift: float
    rate: float
    word_gap: float
    breathiness: float
    tilt_db: float
    level_db: float
    expressiveness: float
    emotion_gain: tuple[float, ...]


def _check_seed(seed: int) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def _check_actor(actor: int) -> None:
    if not isinstance(actor, (int, np.integer)) or isinstance(actor, bool) or actor < 1:
        raise ValueError(f"actor must be a positive int (RAVDESS actors are 1-24), got {actor!r}")


def actor_voice(actor: int, seed: int = 0) -> Voice:
    """The voice of synthetic actor ``actor``, deterministic for ``(actor, seed)``.

    Odd actors are male, even actors female (RAVDESS convention). Male median F0 is drawn in
    95-140 Hz, female in 170-240 Hz; the other attributes are drawn around an average actor.
    """
    _check_actor(actor)
    _check_seed(seed)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(actor), 0x5E1CE]))
    sex = "male" if actor % 2 == 1 else "female"
    variants = _MALE_VARIANTS if sex == "male" else _FEMALE_VARIANTS
    # Spread the variants over consecutive actors of one sex, then shuffle by seed.
    offset = int(rng.integers(len(variants)))
    variant = variants[((actor - 1) // 2 + offset) % len(variants)]
    f0_lo, f0_hi = (95.0, 140.0) if sex == "male" else (170.0, 240.0)
    return Voice(
        actor=int(actor),
        sex=sex,
        language=_LANGUAGES[0],
        variant=variant,
        f0_median=float(np.exp(rng.uniform(np.log(f0_lo), np.log(f0_hi)))),
        f0_range=float(rng.uniform(0.75, 1.3)),
        formant_shift=float(rng.uniform(0.94, 1.07)),
        rate=float(rng.uniform(0.88, 1.12)),
        word_gap=float(rng.uniform(0.0, 0.03)),
        breathiness=float(rng.uniform(0.0, 0.2) + (0.08 if sex == "female" else 0.0)),
        tilt_db=float(rng.uniform(-2.0, 2.0)),
        level_db=float(rng.uniform(-2.0, 2.0)),
        expressiveness=float(rng.uniform(0.75, 1.25)),
        emotion_gain=tuple(float(g) for g in np.exp(rng.normal(0.0, 0.15, len(EMOTIONS)))),
    )


# ---------------------------------------------------------------------------------------------
# Base utterances. Praat's eSpeak keeps state between syntheses inside a process (a static pitch
# "flutter" counter in its wave generator), so the same text gives slightly different samples depending
# on what was synthesised before. To make every clip bit-reproducible, whatever else ran first, all
# base utterances (each language x variant x sentence, neutral settings) are rendered once per process
# in a fresh Python subprocess, always in the same order, and kept in memory (~8 MB, ~1 s). Rate,
# pauses and pitch are then imposed per clip with Praat's Manipulation (PSOLA), which is deterministic.
_BASE_GAP_S = 0.01

_RENDER_SCRIPT = r"""
import io, sys
import numpy as np
from parselmouth.praat import call
from parselmouth.praat import run as praat_run
sr, wpm, gap = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
languages, variants, sentences = sys.argv[4].split("|"), sys.argv[5].split("|"), sys.argv[6].split("|")
arrays = {}
for language in languages:
    for variant in variants:
        synth = call("Create SpeechSynthesizer", language, variant)
        call(synth, "Speech output settings", sr, gap, 1.0, 1.0, wpm, "IPA")
        for k, text in enumerate(sentences):
            tg, snd = call(synth, "To Sound", text, "yes")
            words = []
            for i in range(1, int(call(tg, "Get number of intervals", 3)) + 1):
                if call(tg, "Get label of interval", 3, i).strip():
                    words.append((call(tg, "Get start time of interval", 3, i), call(tg, "Get end time of interval", 3, i)))
            key = f"{language}|{variant}|{k}"
            arrays["x:" + key] = snd.values[0].astype(np.float32)
            arrays["w:" + key] = np.array(words, dtype=np.float64)
buf = io.BytesIO()
np.savez(buf, **arrays)
sys.stdout.buffer.write(buf.getvalue())
"""

_base_lock = threading.Lock()
_praat_rng_lock = threading.Lock()
_base_table: dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]] | None = None


def _base_utterances() -> dict[tuple[str, str, int], tuple[np.ndarray, np.ndarray]]:
    """{(language, variant, statement): (samples at _WORK_SR, word spans (n, 2) in s)}, rendered once."""
    global _base_table
    with _base_lock:
        if _base_table is None:
            variants = _MALE_VARIANTS + _FEMALE_VARIANTS
            sentences = [SENTENCES[k] for k in sorted(SENTENCES)]
            args = [sys.executable, "-c", _RENDER_SCRIPT, str(_WORK_SR), str(_BASE_WPM), str(_BASE_GAP_S),
                    "|".join(_LANGUAGES), "|".join(variants), "|".join(sentences)]
            proc = subprocess.run(args, capture_output=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError("rendering the eSpeak base utterances in a subprocess failed "
                                   f"({sys.executable}):\n{proc.stderr.decode(errors='replace')[-2000:]}")
            data = np.load(io.BytesIO(proc.stdout))
            table = {}
            for language in _LANGUAGES:
                for variant in variants:
                    for k, statement in enumerate(sorted(SENTENCES)):
                        key = f"{language}|{variant}|{k}"
                        table[(language, variant, statement)] = (data["x:" + key], data["w:" + key])
            _base_table = table
        return _base_table


def _validate(actor, emotion, intensity, statement, repetition, seed, sample_rate) -> int:
    _check_actor(actor)
    _check_seed(seed)
    if emotion not in EMOTIONS:
        raise ValueError(f"emotion must be one of {', '.join(EMOTIONS)}; got {emotion!r}")
    if intensity not in (1, 2):
        raise ValueError(f"intensity must be 1 (normal) or 2 (strong), got {intensity!r}")
    if emotion == "neutral" and intensity != 1:
        raise ValueError("intensity 2 (strong) does not exist for emotion 'neutral': RAVDESS records "
                         "neutral at intensity 1 (normal) only")
    if statement not in SENTENCES:
        raise ValueError(f"statement must be 1 ({SENTENCES[1]!r}) or 2 ({SENTENCES[2]!r}), got {statement!r}")
    if repetition not in (1, 2):
        raise ValueError(f"repetition must be 1 or 2, got {repetition!r}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int in Hz, got {sample_rate!r}")
    return EMOTIONS.index(emotion)


def _emotion_params(voice: Voice, emotion: str, intensity: int, rng: np.random.Generator) -> dict:
    """This take's prosody: the emotion profile scaled by intensity, the actor and the take."""
    p = EMOTION_PROSODY[emotion]
    label = EMOTIONS.index(emotion)
    g = _EXPRESSION_GAIN * (STRONG_GAIN if intensity == 2 else 1.0) * voice.expressiveness * voice.emotion_gain[label]
    g *= float(np.exp(rng.normal(0.0, 0.15)))  # take-to-take variation of how much is expressed
    g = min(g, _MAX_GAIN)
    n = rng.normal(size=8)  # independent take jitter of each cue
    return dict(
        f0_st=g * p.f0_st + 0.6 * n[0],
        f0_range=float(np.exp(g * np.log(p.f0_range) + 0.08 * n[1])),
        final_st=g * p.final_st + 0.8 * n[2],
        rate=float(np.exp(g * np.log(p.rate) + 0.04 * n[3])),
        gap_s=max(0.0, g * p.gap_s + 0.008 * n[4]),
        level_db=g * p.level_db + 1.0 * n[5],
        tilt_db=g * p.tilt_db + 0.7 * n[6],
        breath=max(0.0, g * p.breath + 0.03 * n[7]),
        tremor=g * p.tremor,
        creak=min(0.45, g * p.creak),
        formant=float(np.exp(g * np.log(p.formant))),
    )


def _one_pole_lowpass(x: np.ndarray, cutoff_hz: float, sr: int) -> np.ndarray:
    a = float(np.exp(-2.0 * np.pi * cutoff_hz / sr))
    return lfilter([1.0 - a], [1.0, -a], x)


def synthesize_speech(
    actor: int,
    emotion: str,
    intensity: int,
    statement: int,
    repetition: int,
    seed: int = 0,
    sample_rate: int = 48000,
) -> np.ndarray:
    """Synthesize one RAVDESS-like speech clip.

    Args:
        actor: actor number (odd = male); RAVDESS has 1-24, any positive int works.
        emotion: one of :data:`EMOTIONS`.
        intensity: 1 (normal) or 2 (strong); ``"neutral"`` has intensity 1 only.
        statement: 1 ("Kids are talking by the door") or 2 ("Dogs are sitting by the door").
        repetition: 1 or 2 (two takes of the same item differ slightly).
        seed: corpus seed; the actors' voices and every take depend on it.
        sample_rate: output rate in Hz (RAVDESS: 48 000).

    Returns:
        float32 mono waveform, ~3-4.5 s: 0.5-1.0 s of leading silence, the utterance, trailing
        silence; a -60 dBFS noise floor throughout; peak <= 0.99. Bit-identical for equal arguments.

    Raises:
        ValueError: naming the invalid argument (e.g. intensity 2 for neutral).
    """
    label = _validate(actor, emotion, intensity, statement, repetition, seed, sample_rate)
    voice = actor_voice(actor, seed)
    rng = np.random.default_rng(
        np.random.SeedSequence([int(seed), int(actor), label, int(intensity), int(statement), int(repetition)])
    )
    e = _emotion_params(voice, emotion, intensity, rng)
    sr = _WORK_SR

    # 1. The actor's eSpeak voice saying the sentence (neutral settings, rendered once per process).
    base, words = _base_utterances()[(voice.language, voice.variant, statement)]

    # 2. Formant shift r (Praat's "Change gender" trick): play r times faster (formants, F0 and
    #    tempo scale by r), resample back, and let the PSOLA pass below restore F0 and duration.
    r = voice.formant_shift * e["formant"]
    snd = parselmouth.Sound(base.astype(np.float64), sampling_frequency=sr * r)
    snd = call(snd, "Resample", sr, 50)
    words = words / r  # word spans on the time axis of the shifted sound
    t_on, t_off = float(words[0, 0]), float(words[-1, 1])

    # 3. Timing: a constant duration factor (speaking rate; times r to undo the shift's tempo
    #    change) and longer pauses between words, as PSOLA stretches of eSpeak's short word gaps.
    stretch = r * float(np.clip(1.0 / (voice.rate * e["rate"]), 0.7, 1.5))
    extra_gap = float(np.clip(voice.word_gap + e["gap_s"], 0.0, 0.07))
    duration = call("Create DurationTier", "duration", 0.0, snd.duration)
    call(duration, "Add point", 0.0, stretch)
    for (_, gap_on), (gap_off, _) in zip(words[:-1], words[1:]):
        length = gap_off - gap_on
        if extra_gap > 0.0 and length > 0.004:
            k = stretch + extra_gap * rng.uniform(0.5, 1.5) / length
            call(duration, "Add point", gap_on, stretch)
            call(duration, "Add point", gap_on + 0.001, k)
            call(duration, "Add point", gap_off - 0.001, k)
            call(duration, "Add point", gap_off, stretch)

    # 4. Pitch: the eSpeak intonation, re-centred on the target median with the target range, plus
    #    the final movement, a slow take-specific drift, tremor and a creaky final drop. The pitch
    #    tier lives on the input time axis, so output-time frequencies are multiplied by `stretch`.
    manip = call(snd, "To Manipulation", 0.01, 60.0, 600.0)
    pitch = call(manip, "Extract pitch tier")
    ref = float(call(pitch, "Get mean (curve)", 0.0, 0.0))
    target = float(np.clip(voice.f0_median * 2.0 ** ((e["f0_st"] + 0.4 * rng.normal()) / 12.0), 65.0, 480.0))
    f0_range = voice.f0_range * e["f0_range"]
    fin_len = min(0.45 / r, 0.35 * max(t_off - t_on, 0.3))  # roughly the last word
    fin_start = t_off - fin_len
    drift_f = rng.uniform(0.3, 0.9) * stretch  # a slow wander that differs between takes
    drift_ph, trem_ph = rng.uniform(0.0, 2.0 * np.pi, 2)
    trem_f = rng.uniform(5.0, 8.0) * stretch
    formula = (
        f"{target:.6f} * (self / {ref:.6f}) ^ {f0_range:.6f}"
        f" * 2 ^ ((if x > {fin_start:.6f} then {e['final_st']:.6f} * ((x - {fin_start:.6f}) / {fin_len:.6f}) ^ 2"
        f" else 0 fi) / 12)"
        f" * 2 ^ ({0.35 * rng.normal():.6f} * sin(2 * pi * {drift_f:.6f} * x + {drift_ph:.6f}) / 12)"
        f" * (1 + {e['tremor']:.6f} * sin(2 * pi * {trem_f:.6f} * x + {trem_ph:.6f}))"
        f" * (1 - {e['creak']:.6f} * (if x > {fin_start:.6f} then (x - {fin_start:.6f}) / {fin_len:.6f} else 0 fi))"
    )
    call(pitch, "Formula", formula)
    call([pitch, manip], "Replace pitch tier")
    call([manip, duration], "Replace duration tier")
    # PSOLA draws random segment positions when it stretches unvoiced stretches: seed Praat's RNG
    # from this take's generator, and hand the RNG back unpredictable for anyone else afterwards.
    praat_seed = int(rng.integers(1, 2**31 - 1))
    with _praat_rng_lock:
        praat_run(f"random_initializeWithSeedUnsafelyButPredictably ({praat_seed})")
        try:
            out = call(manip, "Get resynthesis (overlap-add)")
        finally:
            praat_run("random_initializeSafelyAndUnpredictably ()")
    x = out.values[0].astype(np.float64)
    t_on_out = float(call(duration, "Get target duration", 0.0, t_on))
    t_off_out = float(call(duration, "Get target duration", 0.0, t_off))
    i_on, i_off = int(t_on_out * sr), min(int(np.ceil(t_off_out * sr)), len(x))

    # 5. Voice quality. Tilt: add (or subtract) a high-passed copy, a shelf of tilt_db above ~1 kHz.
    tilt_db = voice.tilt_db + e["tilt_db"]
    high = x - _one_pole_lowpass(x, 1000.0, sr)
    x = x + (10.0 ** (tilt_db / 20.0) - 1.0) * high
    # Breathiness: aspiration noise shaped by the vocal tract. The speech's own short-time magnitude
    # spectrum with random phases (a whisper of the same words), high-passed, added at `breath`.
    breath = voice.breathiness + e["breath"]
    if breath > 0:
        _, _, spec = stft(x, nperseg=512, noverlap=384)
        phases = np.exp(2j * np.pi * rng.random(spec.shape))
        _, whisper = istft(np.abs(spec) * phases, nperseg=512, noverlap=384)
        whisper = whisper[: len(x)]
        whisper -= _one_pole_lowpass(whisper, 1500.0, sr)
        x = x + _BREATH_GAIN * breath * whisper

    # 6. Loudness: active-speech RMS at the actor's and emotion's level.
    active = x[i_on:i_off] if i_off - i_on > sr // 10 else x
    rms = float(np.sqrt(np.mean(active**2))) + 1e-12
    level = _NEUTRAL_RMS_DBFS + voice.level_db + e["level_db"] + 0.7 * rng.normal()
    x *= 10.0 ** (level / 20.0) / rms

    # 7. RAVDESS-like framing: 0.5-1.0 s before the first word, ~3-4.5 s in all.
    pre, post = int(0.05 * sr), int(0.15 * sr)
    speech = x[max(i_on - pre, 0): min(i_off + post, len(x))].copy()
    fade = np.sin(np.linspace(0.0, np.pi / 2.0, int(0.01 * sr))) ** 2  # no clicks at the cut points
    speech[: len(fade)] *= fade
    speech[-len(fade):] *= fade[::-1]
    speech_s = len(speech) / sr
    lead = rng.uniform(0.5, 1.0)
    lead = max(0.5, min(lead, _MAX_CLIP_S - 0.35 - (speech_s - pre / sr)))
    total = min(max(rng.uniform(3.2, 4.0), lead + speech_s + 0.35), max(_MAX_CLIP_S, lead + speech_s))
    clip = np.zeros(int(round(total * sr)))
    start = int(round(lead * sr)) - pre
    clip[start:start + len(speech)] = speech[: len(clip) - start]

    # 8. Output rate, noise floor, peak limit.
    g = gcd(int(sample_rate), sr)
    if sample_rate != sr:
        clip = resample_poly(clip, int(sample_rate) // g, sr // g)
    clip += 10.0 ** (_NOISE_FLOOR_DBFS / 20.0) * rng.standard_normal(len(clip))
    peak = float(np.max(np.abs(clip)))
    if peak > _PEAK:
        clip *= _PEAK / peak
    return clip.astype(np.float32)
