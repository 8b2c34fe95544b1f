"""Room acoustics for merlib: simulated 3-microphone rooms, RIR measurements, and noisy reverberant speech.

Notebook: 01_rir_simulation.ipynb

- :mod:`.theory` — Sabine absorption and β from T60, ``att2t``, ``t2n``, critical distance.
- :mod:`.simulate` — ``simulate_rir`` / ``simulate_scene``: merlib's PyTorch image-source + diffuse-tail
  simulator (the algorithm of the paper's gpuRIR), plus ``"gpurir"`` and ``"pyroomacoustics"`` backends.
- :mod:`.scenes` — the paper's training-room sampler ``sample_paper_scene``.
- :mod:`.measure` — Schroeder decay, ``measure_t60`` (T30/T20), ``drr_db``.
- :mod:`.noise` — spatially-white AR(1) noise, ``mix_at_snr``, ``reverberate``.
- :mod:`.geometry` — ``MOBILE_GEOMETRY``, the ACE "Mobile" phone array.

The measured ACE test rooms and their simulated stand-ins are in :mod:`merlib.data.ace`.
"""

from .geometry import MOBILE_GEOMETRY, centered, pair_distances, place_array
from .measure import (
    DecayFit,
    drr_db,
    energy_decay_curve,
    fit_decay,
    measure_t60,
    onset_index,
    truncate_at_noise_floor,
)
from .noise import ar1_noise, mix_at_snr, reverberate
from .scenes import PaperSceneConfig, Scene, mics_clear_of_walls, sample_paper_scene, with_distance
from .simulate import BACKENDS, pyroomacoustics_max_order, rir_length, simulate_rir, simulate_scene
from .theory import (
    SPEED_OF_SOUND,
    att2t,
    beta_from_t60,
    critical_distance,
    drr_theory_db,
    room_volume,
    sabine_alpha,
    t2n,
    t60_from_beta,
    wall_areas,
)

__all__ = [
    "BACKENDS",
    "MOBILE_GEOMETRY",
    "SPEED_OF_SOUND",
    "DecayFit",
    "PaperSceneConfig",
    "Scene",
    "ar1_noise",
    "att2t",
    "beta_from_t60",
    "centered",
    "critical_distance",
    "drr_db",
    "drr_theory_db",
    "energy_decay_curve",
    "fit_decay",
    "measure_t60",
    "mics_clear_of_walls",
    "mix_at_snr",
    "onset_index",
    "pair_distances",
    "place_array",
    "pyroomacoustics_max_order",
    "reverberate",
    "rir_length",
    "room_volume",
    "sabine_alpha",
    "sample_paper_scene",
    "simulate_rir",
    "simulate_scene",
    "t2n",
    "t60_from_beta",
    "truncate_at_noise_floor",
    "wall_areas",
    "with_distance",
]
