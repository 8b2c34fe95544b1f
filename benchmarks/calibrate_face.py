"""Calibrate and time the drawn face of the synthetic RAVDESS (merlib.data.synthetic.face).

Renders the quick corpus's video directly (8 actors × 16 clips: each emotion twice — neutral twice at
normal intensity, every other emotion once normal and once strong — 320×180, ~100 frames, a synthetic
speech envelope) and reports, under leave-one-actor-out cross-validation with a standardised logistic
regression:

- ``face``: the corpus baseline's features (8 evenly spaced frames, centre face crop, 24×24 grey, middle
  frames averaged, plus mean absolute frame-to-frame change) — should land between 30 % and 90 %;
- ``frame``: the whole frame at 32×18 grey, middle frames averaged;
- ``colour``: per-clip mean RGB over all frames and its spread over time — a control, must stay ≤ 30 %;
- Haar: the share of sampled frames where OpenCV's frontal-face cascade finds a face;
- ms/frame (CPU time, one OpenCV thread) at 320×180, 640×360 and 1280×720.

    python benchmarks/calibrate_face.py --seeds 0 1 2 [--sheet /tmp/faces.png]
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from merlib.data.synthetic.baselines import colour_features, face_features, loao_accuracy
from merlib.data.synthetic.face import EMOTIONS, contact_sheet, render_face_video


def quick_items(actors=range(1, 9)):
    """(actor, emotion, intensity, variant) for the quick corpus: every emotion twice per actor."""
    items = []
    for actor in actors:
        for emotion in EMOTIONS:
            for k, intensity in enumerate((1, 1) if emotion == "neutral" else (1, 2)):
                items.append((actor, emotion, intensity, k))
    return items


def speech_envelope(rng: np.random.Generator, n: int) -> np.ndarray:
    """A stand-in for the audio RMS envelope at 30 fps: silence, ~4 Hz syllables, silence."""
    t = np.arange(n) / 30.0
    start, stop = rng.uniform(0.15, 0.3) * n, rng.uniform(0.75, 0.9) * n
    syl = np.clip(np.sin(2 * np.pi * rng.uniform(3.0, 5.0) * t + rng.uniform(0, 6.3)), 0, 1) ** 0.7
    talk = (np.arange(n) > start) & (np.arange(n) < stop)
    return np.clip(syl * talk * rng.uniform(0.6, 1.0) + rng.normal(0, 0.03, n), 0, 1).astype(np.float32)


def sample_frames(frames: np.ndarray, n: int = 8) -> np.ndarray:
    idx = np.unique(np.linspace(0, len(frames) - 1, n).round().astype(int))
    return frames[idx]


def frame_features(frames: np.ndarray) -> np.ndarray:
    """Whole frame, 32×18 grey, middle frames averaged."""
    t = len(frames)
    grey = np.stack([cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (32, 18), interpolation=cv2.INTER_AREA)
                     for f in frames]).astype(np.float32) / 255
    return grey[t // 4 : max(t // 4 + 1, 3 * t // 4)].mean(0).ravel()


def loao(features, labels, actors, C: float = 0.5) -> float:
    return loao_accuracy(np.asarray(features), labels, actors, C=C).accuracy


_CASCADE = None


def haar_hits(frames: np.ndarray) -> int:
    global _CASCADE
    if _CASCADE is None:
        _CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    hits = 0
    for f in frames:
        grey = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
        hits += len(_CASCADE.detectMultiScale(grey, 1.1, 5, minSize=(grey.shape[0] // 5,) * 2)) > 0
    return hits


def render_item(args):
    actor, emotion, intensity, variant, seed, size = args
    rng = np.random.default_rng([seed, actor, EMOTIONS.index(emotion), intensity, variant, 77])
    n = int(rng.integers(95, 111))
    frames = render_face_video(actor, emotion, intensity, n, size=size, seed=seed,
                               mouth_open=speech_envelope(rng, n), variant=variant)
    s = sample_frames(frames)
    return (face_features(s), frame_features(s), colour_features(s), colour_features(frames), haar_hits(s), len(s),
            EMOTIONS.index(emotion), actor)


def calibrate(seed: int, size=(320, 180), workers: int = 1) -> dict:
    items = [(a, e, i, v, seed, size) for a, e, i, v in quick_items()]
    if workers > 1:
        from multiprocessing import Pool

        with Pool(workers) as pool:
            rows = pool.map(render_item, items)
    else:
        rows = [render_item(it) for it in items]
    face, frame, colour8, colour_all, hits, total, labels, actors = (list(col) for col in zip(*rows))
    return {
        "seed": seed,
        "face": loao(face, labels, actors),
        "frame": loao(frame, labels, actors),
        "colour": loao(colour8, labels, actors),
        "colour_all_frames": loao(colour_all, labels, actors),
        "haar": float(np.sum(hits) / np.sum(total)),
    }


def timing(sizes=((320, 180), (640, 360), (1280, 720)), clips: int = 4, n_frames: int = 105) -> dict:
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    env = speech_envelope(rng, n_frames)
    out = {}
    for size in sizes:
        render_face_video(1, "happy", 1, 3, size=size)
        cpu = wall = 0.0
        for k in range(clips):
            c0, w0 = time.process_time(), time.perf_counter()
            render_face_video(1 + k, EMOTIONS[(2 * k + 1) % 8], 1, n_frames, size=size, mouth_open=env)
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
        out[f"{size[0]}x{size[1]}"] = {"cpu_ms_per_frame": 1000 * cpu / (clips * n_frames),
                                      "wall_ms_per_frame": 1000 * wall / (clips * n_frames)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--sheet", default=None, help="also save a contact sheet PNG (actors 1 and 2, 640x360) here")
    args = ap.parse_args(argv)
    if args.sheet:
        cv2.imwrite(args.sheet, contact_sheet((1, 2), size=(640, 360))[..., ::-1])
    results = {"calibration": [calibrate(s, workers=args.workers) for s in args.seeds]}
    for r in results["calibration"]:
        print(f"seed {r['seed']}: face {r['face']:.3f}  frame {r['frame']:.3f}  colour {r['colour']:.3f} "
              f"(all frames {r['colour_all_frames']:.3f})  haar {r['haar']:.3f}", flush=True)
    if not args.no_timing:
        results["timing"] = timing()
        for k, v in results["timing"].items():
            print(f"{k}: {v['cpu_ms_per_frame']:.2f} ms/frame CPU, {v['wall_ms_per_frame']:.2f} ms/frame wall")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
