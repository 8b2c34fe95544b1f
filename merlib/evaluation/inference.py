"""The prediction loop: run a model over test loaders and collect its :class:`Predictions`.

Notebook: 06_fusion_training.ipynb (test predictions of the trained models); 05_r2plus1d_video.ipynb and
07_tsne_and_confusion.ipynb call :func:`predict_rooms` too.

- :func:`predict` runs a model in eval mode over a DataLoader of batch dicts (merlib's batch protocol:
  ``waveform``, ``video``, ``label``, ``actor``, ``clip_id``, ``condition``) and returns
  :class:`~merlib.evaluation.predictions.Predictions`; :data:`MODEL_INPUTS` says which batch entries each
  Table II model's ``forward`` takes.
- :func:`predict_rooms` does it for every test room of a prepared corpus: ``{room: Predictions}``.

torch is imported inside the functions that run a model, so ``import merlib.evaluation`` stays light.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..paper_results import MODEL_NAMES
from .predictions import Predictions

__all__ = [
    "MODEL_INPUTS",
    "predict",
    "predict_rooms",
]

#: What each Table II model's ``forward`` takes from a batch (see :func:`predict`).
MODEL_INPUTS: dict[str, tuple[str, ...]] = {
    name: ("video",) if name == "video" else ("waveform",) if name.startswith("audio_") else ("waveform", "video")
    for name in MODEL_NAMES
}


_BATCH_KEYS = ("label", "actor", "clip_id", "condition")
_MODEL_CLASS_INPUTS = {"MER": ("waveform", "video"), "HTSAT": ("waveform",), "VideoClassifier": ("video",)}


def _infer_inputs(model: Any) -> tuple[str, ...]:
    declared = getattr(model, "inputs", None)
    if declared is not None:
        return tuple(declared)
    name = type(model).__name__
    if name in _MODEL_CLASS_INPUTS:
        return _MODEL_CLASS_INPUTS[name]
    raise ValueError(f"cannot tell which batch entries {name}.forward takes; pass inputs=('waveform',) "
                     "(audio), ('video',) (video) or ('waveform', 'video') (MER)")


def _logits_of(output: Any) -> Any:
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):  # AudioOutput, MEROutput and other NamedTuples
        return output.logits
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    raise TypeError(f"the model returned {type(output).__name__}; predict() needs a logits tensor or an "
                    "object with a .logits field")


def _to_list(value: Any) -> list:
    if hasattr(value, "detach"):
        return value.detach().cpu().reshape(-1).tolist()
    if isinstance(value, (str, bytes)):
        return [value]
    return list(value)


def _autocast_dtype(autocast: Any) -> Any:
    import torch

    if autocast is None or autocast is False:
        return None
    if isinstance(autocast, torch.dtype):
        return autocast
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "16": torch.float16}
    if str(autocast).lower() in names:
        return names[str(autocast).lower()]
    raise ValueError(f"autocast must be None, a torch dtype or one of {sorted(names)}, got {autocast!r}")


def predict(
    model: Any,
    loader: Iterable[Mapping[str, Any]],
    inputs: Sequence[str] | None = None,
    device: Any = "cpu",
    autocast: Any = None,
    progress: bool = False,
) -> Predictions:
    """Run ``model`` over every batch of ``loader`` in eval mode and collect its :class:`Predictions`.

    The batch protocol (what merlib's datasets yield, collated by the default ``collate_fn``)::

        {"waveform": (B, C, 64000) float, "video": (B, 3, T, H, W) float,
         "label": (B,) int, "actor": (B,) int, "clip_id": [B str], "condition": [B str]}

    Args:
        model: called as ``model(*[batch[k] for k in inputs])`` — ``model(waveform)`` for the audio models
            (output ``.logits``), ``model(video)`` for the video model (a logits tensor),
            ``model(waveform, video)`` for MER (output ``.logits``). It is moved to ``device`` and put in
            eval mode for the pass; its train/eval mode is restored afterwards.
        loader: an iterable of batch dicts (a ``torch.utils.data.DataLoader``).
        inputs: batch keys passed to ``forward`` in order. ``None``: the model's ``inputs`` attribute if it
            has one, else by class (``HTSAT`` → waveform, ``VideoClassifier`` → video, ``MER`` → both);
            :data:`MODEL_INPUTS` gives them for the Table II names.
        device: where the forward pass runs (``"cpu"``, ``"cuda"``, a ``torch.device``).
        autocast: ``None`` (full precision), a dtype — ``torch.bfloat16``/``"bf16"`` on a GPU or on a CPU with
            native bf16 (:func:`merlib.cpu.bf16_support`; elsewhere it is slower and warns) — or ``"auto"``
            (bf16 where it is native, else full precision). Logits are returned as float32 either way.
        progress: show a tqdm bar.
    """
    import torch

    from ..cpu import resolve_precision, tune_allocator

    keys = tuple(inputs) if inputs is not None else _infer_inputs(model)
    if not keys:
        raise ValueError("inputs is empty; name the batch entries forward takes, e.g. ('waveform',)")
    device = torch.device(device)
    if isinstance(autocast, str) and autocast.lower() == "auto":
        autocast = "bf16" if resolve_precision("auto", device.type) == "bf16" else None
    dtype = _autocast_dtype(autocast)
    if dtype == torch.bfloat16:
        resolve_precision("bf16", device.type)  # warns where the CPU only emulates bf16
    tune_allocator()
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "to"):
        model = model.to(device)
    if hasattr(model, "eval"):
        model.eval()
    iterator: Iterable = loader
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(loader, desc="predict", unit="batch")
    logits, meta = [], {k: [] for k in _BATCH_KEYS}
    try:
        with torch.inference_mode():
            for b, batch in enumerate(iterator):
                missing = [k for k in (*keys, *_BATCH_KEYS) if k not in batch]
                if missing:
                    raise KeyError(f"batch {b} has no {', '.join(map(repr, missing))} (it has "
                                   f"{', '.join(map(repr, batch))}); predict() needs the model inputs {keys} and "
                                   f"{_BATCH_KEYS} for scoring — add them to the dataset's items")
                args = [batch[k].to(device, non_blocking=True) for k in keys]
                if dtype is not None:
                    with torch.autocast(device_type=device.type, dtype=dtype):
                        out = _logits_of(model(*args))
                else:
                    out = _logits_of(model(*args))
                logits.append(out.detach().float().cpu().numpy())
                n = logits[-1].shape[0]
                for k in _BATCH_KEYS:
                    values = _to_list(batch[k])
                    if len(values) != n:
                        raise ValueError(f"batch {b}: {k!r} has {len(values)} entries for {n} clips")
                    meta[k].extend(values)
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    if not logits:
        raise ValueError("the loader yielded no batches; is the test split empty?")
    return Predictions(np.concatenate(logits), np.asarray(meta["label"]), np.asarray(meta["actor"]),
                       np.asarray(meta["clip_id"], dtype=str), np.asarray(meta["condition"], dtype=str))


def predict_rooms(
    model: Any,
    name: str,
    corpus: Any,
    clean: bool = False,
    device: Any = "cpu",
    batch_size: int = 16,
    autocast: Any = None,
) -> dict[str, Predictions]:
    """A Table II model's :class:`Predictions` in every test room of a prepared corpus: ``{room: Predictions}``.

    Args:
        model: the network; ``name``: its Table II name (which inputs it reads, how many microphones).
        corpus: a :class:`merlib.datasets.CorpusPaths` (or a reverberant build folder for the audio models).
        clean: also the clean test set, as ``"clean"`` — only for models that read one microphone (or none):
            a clean recording has a single channel.
        device, batch_size, autocast: as in :func:`predict`.

    The video model's input does not depend on the room, so it is run once and its predictions are labelled
    with each room (the paper prints its result once for the same reason).
    """
    from ..datasets import MERDataModule
    from ..models.mer import get_spec

    spec = get_spec(name)
    if clean and spec.num_mics > 1:
        raise ValueError(f"{name} reads {spec.num_mics} microphones; the clean test set has one (clean=False)")
    dm = MERDataModule(corpus, spec, batch_size=batch_size)
    conditions = dm.test_conditions() + (["clean"] if clean else [])
    out: dict[str, Predictions] = {}
    for condition in conditions:
        ids = [r["clip_id"] for r in dm.select("test", condition)]
        once = next(iter(out.values()), None) if not spec.uses_audio else None
        if once is not None and once.clip_ids.tolist() == ids:
            out[condition] = Predictions(once.logits, once.labels, once.actors, once.clip_ids,
                                         np.full(len(once), condition))
            continue
        out[condition] = predict(model, dm.loader("test", condition), inputs=MODEL_INPUTS[spec.name],
                                 device=device, autocast=autocast)
    return out
