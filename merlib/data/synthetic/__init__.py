"""The built-in synthetic RAVDESS: offline, in RAVDESS's exact names, layout and formats.

Notebook: 00_data_tour.ipynb

The real RAVDESS may not be redistributed, so merlib generates a stand-in that every loader, notebook and
test can use offline through the same code path as the real corpus:

- :mod:`.speech` — the two RAVDESS sentences spoken by Praat's eSpeak synthesizer, with emotion- and
  intensity-dependent prosody and per-actor voices;
- :mod:`.face` — a drawn face whose brows, eyes and mouth follow the emotion, with per-actor looks;
- :mod:`.corpus` — puts them together into wav + mp4 files (``merlib synth OUT_DIR``).

The signal is learnable but deliberately not trivial; see the README of ``tests/`` for the numbers.
"""

from .corpus import CorpusSpec, corpus_items, ensure_corpus, generate_corpus, render_clip

__all__ = ["CorpusSpec", "corpus_items", "ensure_corpus", "generate_corpus", "render_clip"]
