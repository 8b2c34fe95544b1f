"""The package's metadata, environment.yml and the committed notebooks stay consistent."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins(reqs: list[str]) -> dict[str, str]:
    pins = {}
    for req in reqs:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", req.strip())
        assert m, f"requirement {req!r} is not pinned with =="
        pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_every_dependency_is_pinned_and_mirrored_in_environment_yml():
    project = _pyproject()["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e .[dev]" in pip_section
    env_pins = _pins([p for p in pip_section if not p.startswith("-e")])
    assert env_pins == wanted
    assert "python=3.11" in env["dependencies"]
    for name in ("torch", "torchvision", "torchaudio"):
        assert name in wanted


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    pins = _pins(_pyproject()["project"]["dependencies"])
    for name, pinned in pins.items():
        installed = version(name).split("+")[0]
        assert installed == pinned, f"{name}: installed {installed}, pinned {pinned}"


def test_console_command_is_installed():
    out = subprocess.run([sys.executable, "-m", "merlib", "--help"], capture_output=True, text=True, check=True)
    assert "synth" in out.stdout


def _notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs_and_a_parameters_cell(path: Path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; clear them before committing"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    src = "".join(tagged[0]["source"])
    for name in ("QUICK", "SEED", "OUT_DIR"):
        assert re.search(rf"^{name}\s*=", src, re.M), f"{path.name}: parameters cell lacks {name}"
    for line in src.splitlines():  # only literal assignments, so papermill overrides are the whole story
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Z_][A-Z0-9_]*\s*=\s*(True|False|None|-?[\d.e_]+|\"[^\"]*\"|'[^']*'|\(.*\)|\[.*\])", line), line


def test_gitignore_keeps_data_and_outputs_out():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in ("/data/", "/outputs/", ".venv/", "__pycache__/"):
        assert entry in ignored
