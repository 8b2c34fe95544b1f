"""Data: the RAVDESS corpus (real or synthetic), decoding, test rooms and derived corpora.

Notebook: 00_data_tour.ipynb

- :mod:`merlib.data.ravdess` — file names, layouts, audio/video pairing, the actor split
- :mod:`merlib.data.media` — decoding and encoding wav / mp4 (soundfile, PyAV)
- :mod:`merlib.data.synthetic` — the built-in synthetic RAVDESS (``merlib synth``)
- :mod:`merlib.data.ace` — the seven ACE test rooms: measured Mobile RIRs or simulated ACE-like stand-ins
- :mod:`merlib.data.video` — the reference frame pipeline and the decode-once frame cache
- :mod:`merlib.data.reverberant` — the reverberant train/val/test corpus (``merlib reverb``)
- :mod:`merlib.data.fetch` — the real RAVDESS and ACE from Zenodo, resumable and verified (``merlib fetch``)
- :mod:`merlib.data.check` — what a hand-placed RAVDESS / ACE copy holds and lacks (``merlib check-data``)
- :mod:`merlib.data.mirror` — a local Zenodo-style server (the fetch tests, the benchmark, offline mirrors)
"""
