"""Data: the RAVDESS corpus (real or synthetic), decoding, test rooms and derived corpora.

Notebook: 00_data_tour.ipynb

- :mod:`merlib.data.ravdess` — file names, layouts, audio/video pairing, the actor split
- :mod:`merlib.data.media` — decoding and encoding wav / mp4 (soundfile, PyAV)
- :mod:`merlib.data.synthetic` — the built-in synthetic RAVDESS (``merlib synth``)
"""
