"""Shared fixtures: one quick synthetic corpus per test session, and the `gpu` marker policy."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# A private cache for the whole session, set before anything imports merlib.config, so tests and the
# notebooks they execute (papermill kernels inherit the environment) share one quick corpus and never
# touch the user's ~/.cache/merlib.
if "MERLIB_TEST_CACHE" in os.environ:  # reuse between local runs: MERLIB_TEST_CACHE=/tmp/mc make test
    os.environ["MERLIB_CACHE"] = os.environ["MERLIB_TEST_CACHE"]
else:
    os.environ["MERLIB_CACHE"] = tempfile.mkdtemp(prefix="merlib-test-cache-")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` need CUDA: without one they are skipped with that reason (listed by -ra), as the marker's
    description in pyproject.toml says. On a machine that should have a GPU, MERLIB_REQUIRE_GPU=1 makes them
    run regardless, so a broken CUDA set-up fails them instead of skipping them."""
    import torch  # a pinned dependency: a broken install must fail here, not turn into skips

    if torch.cuda.is_available() or os.environ.get("MERLIB_REQUIRE_GPU") == "1":
        return
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(pytest.mark.skip(reason="marked gpu: needs a CUDA device, none on this machine "
                                                    "(MERLIB_REQUIRE_GPU=1 fails instead of skipping)"))


@pytest.fixture(scope="session")
def quick_corpus() -> Path:
    """The quick synthetic RAVDESS (16 actors × 16 clips, 320×180), built once per session."""
    from merlib.data.synthetic import ensure_corpus

    return ensure_corpus("quick", seed=0, progress=False)


@pytest.fixture(scope="session")
def quick_scan(quick_corpus):
    from merlib.data.ravdess import scan

    return scan(quick_corpus)


#: The models the session's short grid trains: what notebooks 06 and 07 analyse (the single-channel and both
#: 3-microphone audio models, the video model, MER Sum PE started from its unimodal twins).
GRID_MODELS = ["video", "audio_rev_sc", "audio_avg_mel", "audio_sum_pe", "mer_sum_pe"]
#: Shorter than `merlib reproduce`'s quick recipe (half the audio and 6 of 8 MER epochs) to keep `make test` within budget;
#: the accuracy floors the tests set hold for it.
GRID_RECIPE = {"audio": {"max_epochs": 12}, "video": {}, "mer": {"max_epochs": 6}}  # video: the full quick recipe


@pytest.fixture(scope="session")
def quick_grid(quick_corpus, tmp_path_factory):
    """A short quick grid trained once per session through `merlib.reproduce.run_grid` (two models at a time):
    ``(out_dir, report)`` with ``out_dir/runs/<model>`` and ``out_dir/predictions``."""
    from merlib.reproduce import run_grid

    out = tmp_path_factory.mktemp("grid")
    report = run_grid(quick_corpus, out, quick=True, seed=0, models=GRID_MODELS, recipe=GRID_RECIPE, progress=False)
    return out, report


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless-capable Chromium for the browser tests; skipped with the install command where there is none."""
    from merlib.book import CHROMIUM_INSTALL, find_chromium

    pytest.importorskip("playwright.sync_api", reason="playwright missing: pip install -e '.[dev]'")
    path = find_chromium()
    if path is None:
        pytest.skip(f"browser test: no Chromium on this machine; install it with: {CHROMIUM_INSTALL}")
    return path


@pytest.fixture(scope="session")
def executed_notebooks(tmp_path_factory) -> Path:
    """Where the notebook tests leave their executed copies, for the book built from them."""
    return tmp_path_factory.mktemp("executed-notebooks")
