"""Looking inside trained models: t-SNE maps, confusion matrices, the per-room figure and robustness curves.

Notebook: 07_tsne_and_confusion.ipynb

The paper shows three figures beside its tables, and this module draws each of them from merlib's own outputs:

- **Fig. 2** — t-SNE of the *input features* next to the *learned embeddings*: :func:`collect_embeddings`
  runs a model over a loader and keeps the log-mels, the video frames, the audio and video embeddings and the
  fused vector the classifier sees; :func:`tsne_maps` projects each to 2-D (scikit-learn's Barnes-Hut
  t-SNE after a PCA to 50 dimensions, the usual recipe) and :func:`plot_tsne` draws them side by
  side with one colour and marker per emotion. A picture alone flatters, so :func:`neighbour_accuracy`
  puts a number on it: the share of clips whose nearest neighbours *among other actors' clips* carry the
  same emotion (without the actor rule, input features mostly cluster by speaker).
- **Fig. 3** — accuracy with its 75 % interval per room and model, ours beside the published numbers
  (:func:`plot_room_accuracy`, from :func:`merlib.evaluation.evaluate_models`' table).
- **Fig. 4** — the row-normalised confusion matrix in percent (:func:`plot_confusion`) and per-class
  precision and recall (:func:`per_class_table`, :func:`plot_per_class`).

Beyond the paper, :func:`robustness_sweep` asks how each model degrades as the room gets worse: the test
clips are reverberated in *freshly simulated* rooms (one new room per clip and point, the paper's protocol
otherwise) while one factor moves — the reverberation time T60, or the source-array distance relative to the
critical distance d_c — and :func:`plot_robustness` draws accuracy against each.

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global figure
state, nothing needs a display) and, given ``out_dir``, also saves it as ``out_dir/<name>.png``.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from .data.ravdess import EMOTIONS
from .evaluation import PAPER_ALPHA, Predictions, accuracy_ci, class_names, confusion, per_class_metrics
from .models.mer import ModelSpec, audio_branch, embeddings, forward_logits, get_spec
from .paper_results import MODEL_LABELS, ROOM_NAMES, TABLE_II

__all__ = [
    "EMOTION_COLOURS",
    "EMOTION_MARKERS",
    "save_figure",
    "EmbeddingSet",
    "collect_embeddings",
    "tsne_2d",
    "tsne_maps",
    "neighbour_accuracy",
    "plot_tsne",
    "plot_confusion",
    "per_class_table",
    "plot_per_class",
    "plot_room_accuracy",
    "EvalClip",
    "load_eval_clips",
    "SweepConfig",
    "draw_scene",
    "robustness_sweep",
    "plot_robustness",
    "plot_window_probabilities",
]

#: One colour per emotion (class order), from matplotlib's tab10, and one marker, so the t-SNE maps read
#: in greyscale too.
EMOTION_COLOURS: tuple[str, ...] = ("#7f7f7f", "#17becf", "#bcbd22", "#1f77b4", "#d62728", "#9467bd", "#2ca02c",
                                    "#ff7f0e")
EMOTION_MARKERS: tuple[str, ...] = ("o", "s", "^", "v", "D", "P", "X", "*")

#: The TSNE panel titles for each kind of representation :func:`collect_embeddings` keeps.
FEATURE_TITLES: dict[str, str] = {
    "audio_input": "input: log-mel (mean over mics)",
    "video_input": "input: video frames",
    "inputs": "input: log-mel + frames",
    "audio": "learned: audio embedding",
    "video": "learned: video embedding",
    "fused": "learned: fused (video ‖ audio)",
    "logits": "learned: class logits",
}


def save_figure(fig: Figure, out_dir: str | os.PathLike | None, name: str, dpi: int = 120) -> Path | None:
    """Save ``fig`` as ``out_dir/name.png`` (folders created); nothing when ``out_dir`` is None."""
    if out_dir is None:
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# ------------------------------------------------------------------------------------------------------------
# embeddings and t-SNE (Fig. 2)
# ------------------------------------------------------------------------------------------------------------


@dataclass
class EmbeddingSet:
    """Representations of N clips, one (N, D) array per kind, with the clips' labels.

    ``features`` keys (those the model and loader provide): ``audio_input`` (log-mel, microphones averaged,
    flattened), ``video_input`` (frames average-pooled to a small grid, flattened), ``audio``, ``video``
    (the branches' 768-d embeddings), ``fused`` (``concat(video, audio)``, the fusion head's input) and
    ``logits``.
    """

    labels: np.ndarray
    actors: np.ndarray
    clip_ids: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def reduced(self, dims: int = 50, seed: int = 0) -> "EmbeddingSet":
        """The same clips with every representation standardised and PCA-reduced to ``dims`` — what
        :func:`tsne_2d` and :func:`neighbour_accuracy` do first; reduce once when calling both on a large set."""
        return EmbeddingSet(self.labels, self.actors, self.clip_ids,
                            {k: _reduce(v, dims, seed) for k, v in self.features.items()})


def collect_embeddings(
    model: nn.Module,
    spec: str | ModelSpec,
    loader: Iterable[Mapping[str, Any]],
    device: str | torch.device = "cpu",
    video_grid: int = 16,
) -> EmbeddingSet:
    """Run a Table II model over ``loader`` (eval mode) and keep its inputs and embeddings for every clip.

    Args:
        model: the network (:func:`merlib.models.mer.build_model` / :func:`merlib.training.load_final`).
        spec: its Table II name.
        loader: batches of :mod:`merlib.datasets` dicts (``waveform``/``video``, ``label``, ``actor``, ``clip_id``).
        video_grid: frames are average-pooled to ``video_grid``² pixels before flattening — enough to keep
            the face's layout, small enough that 1440 clips fit in memory.
    """
    spec = get_spec(spec)
    device = torch.device(device)
    was_training = model.training
    model = model.to(device).eval()
    audio = audio_branch(model)
    parts: dict[str, list[np.ndarray]] = {}
    labels, actors, ids = [], [], []

    def keep(key: str, value: torch.Tensor) -> None:
        parts.setdefault(key, []).append(value.detach().float().flatten(1).cpu().numpy())

    try:
        with torch.inference_mode():
            for batch in loader:
                inputs = {k: batch[k].to(device) for k in ("waveform", "video") if k in batch}
                if "waveform" in inputs and audio is not None:
                    keep("audio_input", audio.logmel(inputs["waveform"]).mean(dim=1))
                if "video" in inputs:
                    v = inputs["video"]
                    keep("video_input", nn.functional.adaptive_avg_pool3d(v, (v.shape[2], video_grid, video_grid)))
                emb = embeddings(model, spec, inputs)
                for key, value in emb.items():
                    keep(key, value)
                if "audio" in emb and "video" in emb:
                    keep("fused", torch.cat([emb["video"], emb["audio"]], dim=1))
                labels.extend(torch.as_tensor(batch["label"]).tolist())
                actors.extend(torch.as_tensor(batch["actor"]).tolist())
                ids.extend(list(batch["clip_id"]))
    finally:
        model.train(was_training)
    if not labels:
        raise ValueError("the loader yielded no batches; nothing to embed")
    features = {k: np.concatenate(v) for k, v in parts.items()}
    if "audio_input" in features and "video_input" in features:
        features["inputs"] = np.concatenate([_standardise(features["audio_input"]),
                                             _standardise(features["video_input"])], axis=1)
    order = ["audio_input", "video_input", "inputs", "audio", "video", "fused", "logits"]
    return EmbeddingSet(np.asarray(labels), np.asarray(actors), np.asarray(ids, dtype=str),
                        {k: features[k] for k in order if k in features})


def _standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit total variance (so two blocks weigh the same when concatenated)."""
    x = x - x.mean(axis=0, keepdims=True)
    scale = math.sqrt(float((x**2).sum()) / max(1, x.shape[0])) or 1.0
    return x / scale


def _reduce(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    x = _standardise(np.asarray(x, dtype=np.float64))
    k = min(dims, x.shape[0] - 1, x.shape[1])
    if x.shape[1] <= dims or k < 2:
        return x
    return PCA(n_components=k, random_state=seed).fit_transform(x)


def tsne_2d(x: np.ndarray, seed: int = 0, perplexity: float = 30.0, pca_dims: int = 50) -> np.ndarray:
    """2-D t-SNE of the rows of ``x`` (N, D): standardised, PCA to ``pca_dims``, then scikit-learn's TSNE
    (PCA initialisation, ``learning_rate="auto"``). Perplexity is capped at (N − 1)/3 so small sets work."""
    from sklearn.manifold import TSNE

    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 5:
        raise ValueError(f"t-SNE needs a (clips, dims) array with at least 5 clips, got shape {x.shape}")
    z = _reduce(x, pca_dims, seed)
    perp = float(min(perplexity, (x.shape[0] - 1) / 3))
    return TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto", random_state=seed).fit_transform(z)


def tsne_maps(
    emb: EmbeddingSet, keys: Sequence[str] | None = None, seed: int = 0, perplexity: float = 30.0
) -> dict[str, np.ndarray]:
    """:func:`tsne_2d` of each representation in ``emb.features`` (or ``keys``): ``{key: (N, 2)}``."""
    keys = list(keys) if keys is not None else list(emb.features)
    missing = [k for k in keys if k not in emb.features]
    if missing:
        raise KeyError(f"no {missing} in these embeddings; they hold {list(emb.features)}")
    return {k: tsne_2d(emb.features[k], seed=seed, perplexity=perplexity) for k in keys}


def neighbour_accuracy(
    x: np.ndarray, labels: Sequence[int], groups: Sequence[Any] | None = None, k: int = 5, pca_dims: int = 50
) -> float:
    """How well a representation groups emotions: the percentage of clips whose ``k`` nearest neighbours
    (Euclidean, after standardising and a PCA to ``pca_dims``) vote for the clip's own emotion.

    With ``groups`` (the actors), neighbours are drawn only from *other* groups, so a representation that
    merely recognises the speaker scores at chance (12.5 % for 8 balanced classes). Ties go to the nearest
    neighbour's class among the tied ones.
    """
    z = _reduce(np.asarray(x), pca_dims, 0)
    y = np.asarray(labels)
    n = len(y)
    if z.shape[0] != n:
        raise ValueError(f"{z.shape[0]} feature rows for {n} labels")
    from scipy.spatial.distance import cdist

    d = cdist(z, z, "sqeuclidean")  # (N, N): 16 MB for the 1440 RAVDESS clips
    np.fill_diagonal(d, np.inf)
    if groups is not None:
        g = np.asarray(groups)
        d[g[:, None] == g[None, :]] = np.inf
    correct = 0
    for i in range(n):
        order = np.argsort(d[i], kind="stable")
        order = order[np.isfinite(d[i, order])][:k]
        if order.size == 0:
            raise ValueError("a clip has no neighbour in another group; groups need at least two members each")
        votes = np.bincount(y[order], minlength=int(y.max()) + 1)
        best = np.flatnonzero(votes == votes.max())
        winner = next(int(c) for c in y[order] if c in best)  # nearest among the tied classes
        correct += int(winner == y[i])
    return 100.0 * correct / n


def plot_tsne(
    maps: Mapping[str, np.ndarray],
    labels: Sequence[int],
    scores: Mapping[str, float] | None = None,
    titles: Mapping[str, str] | None = None,
    ncols: int = 3,
    suptitle: str | None = None,
    out_dir: str | os.PathLike | None = None,
    name: str = "tsne",
) -> Figure:
    """The paper's Fig. 2: one t-SNE panel per representation, each emotion its own colour and marker.

    Args:
        maps: ``{key: (N, 2)}`` from :func:`tsne_maps`.
        labels: (N,) class indices.
        scores: optional ``{key: neighbour accuracy %}`` printed under each title.
        titles: panel titles (default :data:`FEATURE_TITLES`, else the key).
    """
    y = np.asarray(labels)
    names = class_names(max(len(EMOTIONS), int(y.max()) + 1))
    keys = list(maps)
    ncols = max(1, min(ncols, len(keys)))
    nrows = math.ceil(len(keys) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 4.0 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, key in zip(axes, keys):
        pts = np.asarray(maps[key])
        for c in np.unique(y):
            sel = y == c
            ax.scatter(pts[sel, 0], pts[sel, 1], s=22, c=EMOTION_COLOURS[c % 8], marker=EMOTION_MARKERS[c % 8],
                       label=names[c], alpha=0.85, linewidths=0.3, edgecolors="k")
        title = (titles or FEATURE_TITLES).get(key, key)
        if scores and key in scores:
            title += f"\n{scores[key]:.0f} % neighbour accuracy"
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(keys):]:
        ax.set_axis_off()
    handles, texts = axes[0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncols=len(texts), fontsize=9, frameon=False)
    if suptitle:
        fig.suptitle(suptitle)
    save_figure(fig, out_dir, name)
    return fig


# ------------------------------------------------------------------------------------------------------------
# confusion matrices and per-class scores (Fig. 4)
# ------------------------------------------------------------------------------------------------------------


def plot_confusion(
    predictions: Predictions | Mapping[str, Predictions],
    title: str | None = None,
    out_dir: str | os.PathLike | None = None,
    name: str = "confusion",
    decimals: int = 0,
) -> Figure:
    """The paper's Fig. 4: row-normalised confusion matrices in percent, true emotion down, predicted across.

    ``predictions`` is one :class:`~merlib.evaluation.Predictions` or ``{panel title: Predictions}`` for
    several side by side (one colour scale, 0–100 %). Each panel's title carries its accuracy.
    """
    import seaborn as sns

    panels = {title or "": predictions} if isinstance(predictions, Predictions) else dict(predictions)
    if not panels:
        raise ValueError("no predictions to draw")
    fig = Figure(figsize=(5.6 * len(panels) + 0.8, 5.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).ravel()
    for i, (ax, (label, pred)) in enumerate(zip(axes, panels.items())):
        k = pred.logits.shape[1]
        cm = confusion(pred, k)
        names = class_names(k)
        sns.heatmap(cm, ax=ax, vmin=0, vmax=100, cmap="Blues", annot=True, fmt=f".{decimals}f", square=True,
                    xticklabels=names, yticklabels=names, cbar=i == len(panels) - 1,
                    cbar_kws={"label": "% of the true class"}, annot_kws={"fontsize": 8})
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{label}{' · ' if label else ''}accuracy {pred.accuracy:.1f} % (n = {len(pred)})", fontsize=10)
        ax.tick_params(axis="x", rotation=45)
        ax.tick_params(axis="y", rotation=0)
    save_figure(fig, out_dir, name)
    return fig


def per_class_table(predictions: Mapping[str, Predictions]) -> pd.DataFrame:
    """Precision, recall and F1 (percent) per emotion for several models: columns ``(model, metric)``."""
    frames = {m: per_class_metrics(p)[["precision", "recall", "f1"]] for m, p in predictions.items()}
    if not frames:
        raise ValueError("no predictions")
    return pd.concat(frames, axis=1, names=["model", "metric"])


def plot_per_class(
    predictions: Mapping[str, Predictions],
    metric: str = "recall",
    out_dir: str | os.PathLike | None = None,
    name: str = "per_class",
) -> Figure:
    """Grouped bars of one per-class score (``"recall"``, ``"precision"`` or ``"f1"``) per emotion and model."""
    if metric not in ("precision", "recall", "f1"):
        raise ValueError(f"metric must be 'precision', 'recall' or 'f1', got {metric!r}")
    table = per_class_table(predictions)
    models = list(predictions)
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(models)
    x = np.arange(len(table.index))
    for i, m in enumerate(models):
        ax.bar(x + (i - (len(models) - 1) / 2) * width, table[(m, metric)].fillna(0), width, label=m)
    ax.axhline(100 / len(table.index), color="grey", ls=":", lw=1, label="chance")
    ax.set_xticks(x, list(table.index))
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncols=min(4, len(models) + 1))
    save_figure(fig, out_dir, name)
    return fig


# ------------------------------------------------------------------------------------------------------------
# accuracy per room, ours beside the paper's (Fig. 3)
# ------------------------------------------------------------------------------------------------------------


def plot_room_accuracy(
    per_room: pd.DataFrame,
    models: Sequence[str] | None = None,
    rooms: Sequence[str] | None = None,
    paper: bool = True,
    interval: str = "clip",
    out_dir: str | os.PathLike | None = None,
    name: str = "room_accuracy",
) -> Figure:
    """The paper's Fig. 3: accuracy and its 75 % interval per test room and model.

    Args:
        per_room: :func:`merlib.evaluation.evaluate_models`' table (columns ``model, room, accuracy, low,
            high`` and ``actor_low, actor_high``).
        models, rooms: which to draw and in which order (default: all, Table II order).
        paper: draw the published accuracy and interval of each (model, room) as a hollow marker just right
            of ours (the paper's Fig. 3 shows two rooms; this draws any).
        interval: ``"clip"`` (the paper's) or ``"actor"`` (per-actor resampling).
    """
    if interval not in ("clip", "actor"):
        raise ValueError(f"interval must be 'clip' or 'actor', got {interval!r}")
    lo_col, hi_col = ("low", "high") if interval == "clip" else ("actor_low", "actor_high")
    df = per_room.copy()
    models = list(models) if models is not None else list(dict.fromkeys(df["model"]))
    present = list(dict.fromkeys(df["room"]))
    rooms = list(rooms) if rooms is not None else [r for r in ROOM_NAMES if r in present] + \
        [r for r in present if r not in ROOM_NAMES]
    fig = Figure(figsize=(max(6.0, 1.6 * len(rooms) + 2), 4.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(models))
    colours = [f"C{i}" for i in range(len(models))]
    for i, m in enumerate(models):
        sub = df[df["model"] == m].set_index("room")
        x0 = np.arange(len(rooms)) + (i - (len(models) - 1) / 2) * width
        have = [r in sub.index for r in rooms]
        xs = x0[have]
        rs = [r for r, h in zip(rooms, have) if h]
        if rs:
            acc, lo, hi = (sub.loc[rs, c].to_numpy(float) for c in ("accuracy", lo_col, hi_col))
            ax.errorbar(xs - (0.18 * width if paper else 0), acc, yerr=[acc - lo, hi - acc], fmt="o", color=colours[i],
                        capsize=3, ms=6, label=MODEL_LABELS.get(m, m))
        if paper and m in TABLE_II:
            cells = [(x, TABLE_II[m][r]) for x, r in zip(x0, rooms) if r in TABLE_II[m]]
            if cells:
                px = np.array([x for x, _ in cells]) + 0.18 * width
                pa = np.array([c.accuracy for _, c in cells])
                plo = np.array([c.low for _, c in cells])
                phi = np.array([c.high for _, c in cells])
                ax.errorbar(px, pa, yerr=[pa - plo, phi - pa], fmt="o", mfc="white", color=colours[i], capsize=3,
                            ms=6, alpha=0.8)
    ax.axhline(100 / len(EMOTIONS), color="grey", ls=":", lw=1)
    ax.text(len(rooms) - 0.5, 100 / len(EMOTIONS), "chance ", ha="right", va="bottom", color="grey", fontsize=8)
    ax.set_xticks(np.arange(len(rooms)), rooms)
    ax.set_xlim(-0.6, len(rooms) - 0.4)
    ax.set_ylim(0, 100)
    what = "per clip (the paper's)" if interval == "clip" else "per actor"
    ax.set_ylabel(f"accuracy (%), 75 % interval {what}")
    ax.legend(fontsize=8, ncols=min(5, len(models)), loc="upper left")
    if paper:
        ax.set_title("filled: merlib · hollow: the paper's published result (Table II)", fontsize=9)
    save_figure(fig, out_dir, name)
    return fig


# ------------------------------------------------------------------------------------------------------------
# robustness curves on freshly simulated rooms (beyond the paper)
# ------------------------------------------------------------------------------------------------------------


@dataclass
class EvalClip:
    """One clip for evaluating models on new rooms: clean 16 kHz audio (N,), the cached frames, the labels.

    ``label`` and ``actor`` are None for a clip nobody labelled (a sound of your own in the acoustic lab,
    :func:`merlib.widgets.load_clip`)."""

    clip_id: str
    label: int | None
    actor: int | None
    waveform: np.ndarray
    video: torch.Tensor | None = None

    @property
    def emotion(self) -> str:
        return "unknown" if self.label is None else EMOTIONS[self.label]


def load_eval_clips(
    corpus: Any,
    split: str = "test",
    video: bool = True,
    max_clips: int | None = None,
    clip_samples: int | None = None,
) -> list[EvalClip]:
    """The clean clips of ``split`` from a reverberant build (its ``clean`` rows), with their cached frames.

    Args:
        corpus: a :class:`merlib.datasets.CorpusPaths` (or a reverberant build folder; then no video).
        split: ``"test"``, ``"val"`` or ``"train"``.
        video: also load the frames (needs ``corpus.frames``).
        max_clips: keep the first clips only (in manifest order).
        clip_samples: samples kept from each clip (default 64 000, the models' 4 s).
    """
    from .data.reverberant import read_manifest
    from .data.video import VideoFrames
    from .datasets import CLIP_SAMPLES, CorpusPaths, read_waveform

    paths = corpus if isinstance(corpus, CorpusPaths) else CorpusPaths(Path(corpus))
    rows = [r for r in read_manifest(paths.reverberant) if r["split"] == split and r["condition"] == "clean"]
    if not rows:
        raise ValueError(f"{paths.reverberant / 'manifest.csv'} has no clean {split!r} clips; build the reverberant "
                         "corpus with the clean copies (merlib reverb without --no-clean)")
    rows = rows[:max_clips] if max_clips else rows
    frames = None
    if video:
        if paths.frames is None:
            raise ValueError("video=True needs CorpusPaths(reverberant, frames=<frame cache>)")
        frames = VideoFrames([r["clip_id"] for r in rows], paths.frames)
    n = clip_samples or CLIP_SAMPLES
    return [EvalClip(r["clip_id"], int(r["label"]), int(r["actor"]), read_waveform(r["path"], 1, n)[0],
                     frames[i][0] if frames is not None else None) for i, r in enumerate(rows)]


@dataclass
class SweepConfig:
    """The two one-factor sweeps of :func:`robustness_sweep`.

    Attributes:
        t60s: reverberation times (s) of the T60 sweep; the source-array distance is drawn as in training,
            U[0.2 m, d_c], so only the room's reverberation moves. The paper trains on 0.5–0.85 s and tests
            on 0.33–1.22 s.
        distance_ratios: d / d_c of the distance sweep, at T60 = ``t60_for_distance``. Training covered
            d ≤ d_c (ratio ≤ 1), where the direct sound dominates; beyond it the reverberant field does.
        t60_for_distance: the distance sweep's T60.
        snr_db: AR(1) noise, as in the corpus (20 dB).
        backend: the RIR simulator (:data:`merlib.acoustics.BACKENDS`).
    """

    t60s: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9, 1.2)
    distance_ratios: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)
    t60_for_distance: float = 0.6
    snr_db: float = 20.0
    backend: str = "merlib"

    @classmethod
    def quick(cls) -> "SweepConfig":
        """Four T60s and three distances, for the quick notebook."""
        return cls(t60s=(0.3, 0.6, 0.9, 1.2), distance_ratios=(0.5, 1.0, 3.0))


def _point_seed(seed: int, sweep: str, value: float, clip_id: str) -> int:
    return zlib.crc32(f"{seed}|{sweep}|{value:.4f}|{clip_id}".encode())


def draw_scene(rng: np.random.Generator, t60: float, distance_ratio: float | None = None, max_rooms: int = 200):
    """A paper-protocol room (:func:`merlib.acoustics.sample_paper_scene`) with reverberation time ``t60``;
    with ``distance_ratio`` the array is then moved to ``distance_ratio · d_c`` from the source (random
    azimuths; a room too small for that distance is redrawn, so far points favour larger rooms)."""
    from .acoustics import PaperSceneConfig, mics_clear_of_walls, sample_paper_scene, with_distance

    cfg = PaperSceneConfig(t60_range=(t60, t60))
    for _ in range(max_rooms):
        scene = sample_paper_scene(rng, cfg)
        if distance_ratio is None:
            return scene
        target = distance_ratio * scene.critical_distance
        for _ in range(24):
            try:
                moved = with_distance(scene, target, azimuth=float(rng.uniform(0, 2 * math.pi)))
            except ValueError:
                continue
            if mics_clear_of_walls(moved.mics, moved.room_dim, cfg.mic_wall_margin):  # as the paper sampler
                return moved
    raise ValueError(f"no paper-protocol room fits a source-array distance of {distance_ratio} × d_c at T60 = "
                     f"{t60} s; use a smaller ratio")


def _reverberate_point(clips: Sequence[EvalClip], sweep: str, value: float, t60: float, ratio: float | None,
                       cfg: SweepConfig, seed: int) -> tuple[np.ndarray, list[Any]]:
    from .acoustics import reverberate, simulate_scene

    waves, scenes = [], []
    for clip in clips:
        s = _point_seed(seed, sweep, value, clip.clip_id)
        rng = np.random.default_rng(s)
        scene = draw_scene(rng, t60, ratio)
        rirs = simulate_scene(scene, backend=cfg.backend, generator=torch.Generator().manual_seed(s))
        waves.append(reverberate(clip.waveform, rirs, cfg.snr_db, rng))
        scenes.append(scene)
    return np.stack(waves), scenes


def _model_logits(model: nn.Module, spec: ModelSpec, waves: np.ndarray, video: torch.Tensor | None,
                  device: torch.device, batch_size: int) -> np.ndarray:
    out = []
    for start in range(0, waves.shape[0], batch_size):
        batch: dict[str, torch.Tensor] = {}
        if spec.uses_audio:
            batch["waveform"] = torch.from_numpy(waves[start:start + batch_size, : max(1, spec.num_mics)]).to(device)
        if spec.uses_video:
            if video is None:
                raise ValueError(f"model {spec.name!r} reads video but the clips were loaded without frames")
            batch["video"] = video[start:start + batch_size].to(device)
        out.append(forward_logits(model, spec, batch).float().cpu().numpy())
    return np.concatenate(out)


def robustness_sweep(
    models: Mapping[str, nn.Module],
    clips: Sequence[EvalClip],
    cfg: SweepConfig | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    progress: bool = False,
) -> pd.DataFrame:
    """Accuracy of each model as the room's T60 and the source-array distance change (fresh rooms).

    For every point of the two sweeps (:class:`SweepConfig`) each clip is convolved with the RIRs of a room
    drawn for it alone (deterministic from ``seed``, the point and the clip id, so every model hears the same
    signals and a re-run gives the same table) plus AR(1) noise; each model reads the microphones it was
    built for (a single-channel model microphone 0).

    Args:
        models: ``{Table II name: model}`` — e.g. ``audio_rev_sc``, ``audio_avg_mel``, ``audio_sum_pe``,
            ``mer_sum_pe``.
        clips: :func:`load_eval_clips` (with frames when a model reads video).

    Returns:
        One row per (point, model): ``sweep`` (``"t60"``/``"distance"``), ``t60``, ``distance_ratio`` (the
        target d/d_c, NaN in the T60 sweep), ``mean_distance``, ``mean_critical_distance`` (m), ``mean_drr_db``
        (diffuse-field theory), ``model``, ``accuracy``, ``low``, ``high`` (75 % interval over clips), ``n``.
    """
    from tqdm.auto import tqdm

    if not clips:
        raise ValueError("no clips to evaluate")
    cfg = cfg or SweepConfig()
    device = torch.device(device)
    specs = {name: get_spec(name) for name in models}
    video = None
    if any(s.uses_video for s in specs.values()):
        if any(c.video is None for c in clips):
            raise ValueError("a model reads video: load the clips with load_eval_clips(..., video=True)")
        video = torch.stack([c.video for c in clips])
    labels = np.array([c.label for c in clips])
    points = [("t60", t, t, None) for t in cfg.t60s] + \
             [("distance", r, cfg.t60_for_distance, r) for r in cfg.distance_ratios]
    for m in models.values():
        m.to(device).eval()
    rows = []
    iterator = tqdm(points, desc="rooms", unit="point") if progress else points
    with torch.inference_mode():
        for sweep, value, t60, ratio in iterator:
            waves, scenes = _reverberate_point(clips, sweep, value, t60, ratio, cfg, seed)
            geometry = {
                "mean_distance": float(np.mean([s.distance for s in scenes])),
                "mean_critical_distance": float(np.mean([s.critical_distance for s in scenes])),
                "mean_drr_db": float(np.mean([s.drr_theory_db for s in scenes])),
            }
            for name, model in models.items():
                logits = _model_logits(model, specs[name], waves, video, device, batch_size)
                ci = accuracy_ci(logits.argmax(1), labels, alpha=PAPER_ALPHA, seed=seed)
                rows.append({"sweep": sweep, "t60": t60, "distance_ratio": ratio if ratio is not None else math.nan,
                             **geometry, "model": name, "accuracy": ci.accuracy, "low": ci.low, "high": ci.high,
                             "n": ci.n})
    return pd.DataFrame(rows)


def plot_robustness(
    sweep: pd.DataFrame,
    training_t60: tuple[float, float] = (0.5, 0.85),
    out_dir: str | os.PathLike | None = None,
    name: str = "robustness",
) -> Figure:
    """Accuracy against T60 (left) and against d/d_c (right), one line and 75 % band per model; the range
    the models were trained on is shaded."""
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    panels = [("t60", "t60", "T60 (s)", training_t60),
              ("distance", "distance_ratio", "source–array distance / critical distance", (0.2, 1.0))]
    for ax, (kind, col, xlabel, train_range) in zip(axes, panels):
        sub = sweep[sweep["sweep"] == kind]
        for i, (m, g) in enumerate(sub.groupby("model", sort=False)):
            g = g.sort_values(col)
            ax.plot(g[col], g["accuracy"], "o-", color=f"C{i}", label=MODEL_LABELS.get(m, m))
            ax.fill_between(g[col], g["low"], g["high"], color=f"C{i}", alpha=0.15)
        if kind == "distance" and len(sub):
            train_range = (0.8 * float(sub[col].min()), 1.0)  # training drew d in [0.2 m, d_c]: ratios up to 1
        ax.axvspan(*train_range, color="tab:green", alpha=0.08, label="training range")
        ax.axhline(100 / len(EMOTIONS), color="grey", ls=":", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 100)
        if kind == "distance":
            ax.set_xscale("log")
            ax.set_xticks(sorted(sub[col].unique()), [f"{v:g}" for v in sorted(sub[col].unique())])
            ax.minorticks_off()
    axes[0].set_ylabel("accuracy (%) with 75 % interval")
    n = int(sweep["n"].iloc[0]) if len(sweep) else 0
    t60d = sweep.loc[sweep["sweep"] == "distance", "t60"]
    axes[0].set_title(f"T60 sweep (distance ~ U[0.2 m, d_c], {n} clips, a new room each)", fontsize=10)
    axes[1].set_title(f"distance sweep (T60 = {t60d.iloc[0] if len(t60d) else math.nan:g} s)", fontsize=10)
    axes[0].legend(fontsize=8)
    save_figure(fig, out_dir, name)
    return fig


def plot_window_probabilities(
    result: Any,
    segments: Sequence[tuple[float, float, str]] | None = None,
    title: str | None = None,
    out_dir: str | os.PathLike | None = None,
    name: str = "own_clip",
) -> Figure:
    """A recording's per-window class probabilities over time (:func:`merlib.predict.predict_file`).

    Each emotion is a line through its windows' probabilities, drawn at the window centres; grey bars under the
    axis show the extent of the first and the last window. ``segments`` — ``(start_s, end_s, emotion)`` of the parts whose emotion is
    known — shade the background in that emotion's colour. The title gives the file's prediction (the mean over
    windows).
    """
    probs = np.asarray(result.window_probs)
    if probs.ndim != 2 or not len(probs):
        raise ValueError("the result has no windows (was the file classified? see result.error)")
    names = list(result.classes)
    centres = np.asarray(result.starts) + result.window_s / 2
    fig = Figure(figsize=(9.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for start, end, emotion in segments or ():
        k = names.index(emotion)
        ax.axvspan(start, end, color=EMOTION_COLOURS[k % len(EMOTION_COLOURS)], alpha=0.15, lw=0)
        ax.text((start + end) / 2, 1.02, f"true: {emotion}", ha="center", va="bottom", fontsize=8,
                transform=ax.get_xaxis_transform())
    for k, label in enumerate(names):
        ax.plot(centres, probs[:, k], marker=EMOTION_MARKERS[k % len(EMOTION_MARKERS)], ms=4, lw=1.6,
                color=EMOTION_COLOURS[k % len(EMOTION_COLOURS)], label=label)
    # the extent of the first and the last window (drawing all of them would hide each other)
    for j in sorted({0, len(result.starts) - 1}):
        start = result.starts[j]
        ax.plot([start, start + result.window_s], [-0.05 - 0.04 * j / max(1, len(result.starts) - 1)] * 2,
                color="0.55", lw=3, solid_capstyle="butt", label=f"{result.window_s:g} s window" if j == 0 else None)
    ax.set_xlim(0, max(result.duration_s, result.starts[-1] + result.window_s))
    ax.set_ylim(-0.12, 1.0)
    ax.set_xlabel("time (s) — each point is the window centred there; grey: the first and the last window")
    ax.set_ylabel("probability")
    top = int(np.argmax(result.probs))
    ax.set_title(title or f"{Path(result.path).name}: {names[top]} ({result.probs[top]:.2f}, mean of "
                          f"{len(probs)} windows)", fontsize=10, pad=14 if segments else 6)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    save_figure(fig, out_dir, name)
    return fig

