"""Calibrate the synthetic speech: how learnable are emotion and sentence from pooled log-mel statistics?

Builds clips straight from :func:`merlib.data.synthetic.speech.synthesize_speech` at 16 kHz for actors
1-8, pools a 64-bin log-mel (the docs/design.md §4 front end, fmax 8 kHz, first 4 s) into per-bin statistics over
time (mean and std; optionally |delta| or max), standardises and fits a logistic regression,
leave-one-actor-out. Prints emotion and sentence accuracy for the quick subset (16 clips per actor, as
the quick corpus) and all 60 clips per actor. The knob is ``_EXPRESSION_GAIN`` in the speech module.

    python benchmarks/calibrate_speech.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
import torchaudio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from merlib.data.synthetic.speech import EMOTIONS, synthesize_speech

SR = 16000


def all_items(actor: int) -> list[tuple]:
    """RAVDESS's 60 speech items of one actor: (emotion, intensity, statement, repetition)."""
    return [(e, i, s, r) for e in EMOTIONS for i in ((1,) if e == "neutral" else (1, 2))
            for s in (1, 2) for r in (1, 2)]


def quick_items(actor: int) -> list[tuple]:
    """The quick corpus' 16 items: repetition 1; neutral both sentences; other emotions one normal and
    one strong take, the strong take's sentence alternating with the label."""
    out = []
    for e, i, s, r in all_items(actor):
        label = EMOTIONS.index(e)
        strong_statement = 2 if label % 2 == 0 else 1
        if r == 1 and (label == 0 or s == (strong_statement if i == 2 else 3 - strong_statement)):
            out.append((e, i, s, r))
    return out


_MEL = None


def logmel(x: np.ndarray) -> np.ndarray:
    """(64, frames) log-mel of the first 4 s (zero-padded), docs/design.md §4 settings with fmax 8 kHz."""
    global _MEL
    if _MEL is None:
        _MEL = torchaudio.transforms.MelSpectrogram(
            sample_rate=SR, n_fft=1024, win_length=1024, hop_length=160, f_min=50.0, f_max=8000.0,
            n_mels=64, power=2.0, norm="slaney", mel_scale="slaney")
    x = np.pad(x[: 4 * SR], (0, max(0, 4 * SR - len(x)))).astype(np.float32)
    return 10.0 * torch.log10(torch.clamp(_MEL(torch.from_numpy(x)), min=1e-10)).numpy()


FEATURES = {
    "mean+std": lambda m: np.concatenate([m.mean(1), m.std(1)]),
    "mean+std+|delta|": lambda m: np.concatenate([m.mean(1), m.std(1), np.abs(np.diff(m, axis=1)).mean(1)]),
    "mean+std+max": lambda m: np.concatenate([m.mean(1), m.std(1), m.max(1)]),
}


def _clip(args):
    torch.set_num_threads(1)
    actor, (e, i, s, r), seed = args
    m = logmel(synthesize_speech(actor, e, i, s, r, seed=seed, sample_rate=SR))
    return actor, EMOTIONS.index(e), s, {name: f(m) for name, f in FEATURES.items()}


def loao(X, y, actors, C=1.0):
    pred = np.empty_like(y)
    for a in np.unique(actors):
        tr, te = actors != a, actors == a
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))
        clf.fit(X[tr], y[tr])
        pred[te] = clf.predict(X[te])
    return float(np.mean(pred == y)), pred


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--actors", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--confusion", action="store_true")
    args = ap.parse_args()
    for seed in args.seeds:
        jobs = [(a, it, seed) for a in range(1, args.actors + 1) for it in all_items(a)]
        t0 = time.time()
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            rows = list(ex.map(_clip, jobs, chunksize=8))
        dt = time.time() - t0
        actors = np.array([r[0] for r in rows]); y = np.array([r[1] for r in rows])
        stm = np.array([r[2] for r in rows])
        quick = np.array([it in quick_items(a) for a, it, _ in jobs])
        for fname in FEATURES:
            X = np.stack([r[3][fname] for r in rows])
            for subset, mask in (("quick16", quick), ("all60", np.ones_like(quick))):
                res = []
                for C in (1.0, 0.1):
                    acc, pred = loao(X[mask], y[mask], actors[mask], C)
                    sacc, _ = loao(X[mask], stm[mask], actors[mask], C)
                    res.append(f"C={C}: emotion {acc:.3f} sentence {sacc:.3f}")
                    if args.confusion and C == 1.0 and subset == "all60" and fname == "mean+std":
                        cm = confusion_matrix(y[mask], pred, normalize="true")
                        print("      " + " ".join(f"{e[:4]:>5}" for e in EMOTIONS))
                        for e, row in zip(EMOTIONS, cm):
                            print(f"{e[:5]:>5} " + " ".join(f"{v:5.2f}" for v in row))
                print(f"seed {seed} {fname:18s} {subset:7s} " + " | ".join(res))
        print(f"seed {seed}: {len(jobs)} clips in {dt:.1f} s")


if __name__ == "__main__":
    main()
