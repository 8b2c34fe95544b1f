"""JupyterLab: `make lab` serves the notebooks with merlib's Python as the kernel, and the acoustic lab fits the page.

The first test runs `make lab` itself (only the install step is marked done, and the interpreter is the one
running the tests), so the test and the Makefile cannot drift apart. The second opens a small notebook with the
acoustic lab in headless Chromium and measures it at 1000, 1400 and 1920 px. Each server listens on a free
loopback port with a token, and its config, data and runtime folders are temporary: nothing of the user's
Jupyter set-up is read or written. Kernels are found through Linux's /proc, to check they end with the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "merlib-test-token"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds kernels through Linux /proc")]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, method: str = "GET", body: dict | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return response.status, response.read()


def _get_json(url: str) -> dict:
    status, body = _request(url)
    assert status == 200, f"GET {url}: HTTP {status}"
    return json.loads(body)


def _pids_with(fragment: str) -> list[int]:
    """The live processes whose command line contains ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if fragment in (entry / "cmdline").read_bytes().decode(errors="replace") and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:  # it ended while we looked
                pass
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"  # a zombie has ended; nobody has reaped it yet


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def _server(command: list[str], tmp_path: Path) -> Iterator[dict]:
    """Run a JupyterLab ``command`` (its ``{args}`` filled in with the port, the token and --no-browser) with
    temporary Jupyter folders until it answers; yield ``{"base", "port", "runtime", "log"}``. On leaving, stop it
    with SIGTERM to its process group (a process manager's stop) and check that it and its kernels ended."""
    port = _free_port()
    folders = {name: tmp_path / name.lower() for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR",
                                                          "JUPYTER_RUNTIME_DIR", "IPYTHONDIR")}
    env = {**os.environ, **{k: str(v) for k, v in folders.items()}}
    env.pop("JUPYTER_PATH", None)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0 --IdentityProvider.token={TOKEN}"
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI run as root; JupyterLab refuses without it
        args += " --allow-root"
    # "{args}" alone stands for the options as separate arguments; within a word (LAB_ARGS={args}) as one string
    argv = [a for part in command for a in (args.split() if part == "{args}" else [part.format(args=args)])]
    log = tmp_path / "lab.log"
    runtime = folders["JUPYTER_RUNTIME_DIR"]
    started = time.monotonic()
    with log.open("wb") as out:
        # its own process group, so one signal reaches make and the server it runs
        proc = subprocess.Popen(argv, cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:  # wait until the server answers
            if proc.poll() is not None:
                pytest.fail(f"{command[0]} exited with {proc.returncode} before serving:\n{log.read_text()[-3000:]}")
            try:
                _get_json(f"{base}/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() - started < 90, f"no answer from {base} in 90 s:\n{log.read_text()[-3000:]}"
                time.sleep(0.25)
        print(f"JupyterLab answered {time.monotonic() - started:.1f} s after it started")
        yield {"base": base, "runtime": runtime, "log": log, "port": port}
    finally:
        kernels = _pids_with(str(runtime))  # a kernel's command line names its connection file in the runtime folder
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
            stopped = True
        except subprocess.TimeoutExpired:
            stopped = False
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while (_group_alive(proc.pid) or any(_alive(p) for p in kernels)) and time.monotonic() < deadline:
            time.sleep(0.1)
        group_left, kernels_left = _group_alive(proc.pid), [p for p in kernels if _alive(p)]
        if group_left:
            os.killpg(proc.pid, signal.SIGKILL)
        for p in kernels_left:
            os.kill(p, signal.SIGKILL)
    assert stopped, f"the server did not stop within 30 s of SIGTERM:\n{log.read_text()[-3000:]}"
    assert not group_left, "a process of the server outlived it by 15 s"
    assert not kernels_left, "the server left its kernel running"


@pytest.mark.skipif(shutil.which("make") is None, reason="make lab needs GNU make on PATH")
def test_make_lab_serves_the_notebooks_with_merlibs_python(tmp_path):
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: make takes the install as done and runs only the lab recipe
    make = ["make", "--no-print-directory", "lab", f"PY={sys.executable}", f"STAMP={stamp}", "LAB_ARGS={args}"]
    with _server(make, tmp_path) as lab:
        base = lab["base"]
        assert _get_json(f"{base}/api/status")["kernels"] == 0
        # the root is the repository, the file browser opens notebooks/ (JupyterLab's page config says so)
        nb = _get_json(f"{base}/api/contents/notebooks/01_rir_simulation.ipynb")
        assert nb["type"] == "notebook" and nb["format"] == "json"
        assert len(nb["content"]["cells"]) > 10 and nb["content"]["metadata"]["kernelspec"]["name"] == "python3"
        assert _get_json(f"{base}/api/contents/merlib/widgets.py")["type"] == "file"  # the notebooks' module links
        _, page = _request(f"{base}/lab")
        config = json.loads(re.search(rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
                                      page, re.S).group(1))
        assert config["preferredPath"].strip("/") == "notebooks"
        # the settings and workspaces JupyterLab saves go to the temporary folders, not the user's
        for key in ("userSettingsDir", "workspacesDir"):
            assert Path(config[key]).is_relative_to(tmp_path), f"{key} = {config[key]}"

        # the notebooks' kernel, python3, is the default and is the interpreter running merlib: a bare `python`
        # in a kernelspec is started with the server's own interpreter
        specs = _get_json(f"{base}/api/kernelspecs")
        assert specs["default"] == "python3"
        argv0 = specs["kernelspecs"]["python3"]["spec"]["argv"][0]
        assert argv0 in ("python", "python3", sys.executable), f"python3 kernel runs {argv0}, not {sys.executable}"
        # start it, and ask it over its own channels which Python it is and where merlib comes from
        status, body = _request(f"{base}/api/kernels", "POST", {"name": "python3"}, timeout=60)
        assert status == 201
        kernel_id = json.loads(body)["id"]
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient(connection_file=str(lab["runtime"] / f"kernel-{kernel_id}.json"))
        client.load_connection_file()
        client.start_channels()
        outputs: list[dict] = []
        try:
            client.wait_for_ready(timeout=60)
            reply = client.execute_interactive("import sys, merlib; print(sys.executable, merlib.__file__)",
                                               output_hook=outputs.append, timeout=60)
        finally:
            client.stop_channels()
        assert reply["content"]["status"] == "ok"
        printed = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream").split()
        assert printed[0] == sys.executable and Path(printed[1]).is_relative_to(ROOT / "merlib")
        assert len(_pids_with(f"kernel-{kernel_id}.json")) == 1
    text = lab["log"].read_text()
    assert "-m jupyterlab" in text and f"127.0.0.1:{lab['port']}" in text  # make echoed the recipe; the server its URL


# -- the acoustic lab in a real JupyterLab ---------------------------------------------------------------------

LAB_NOTEBOOK = """\
import numpy as np
from merlib.analysis import EvalClip
from merlib.models.mer import build_model
from merlib.widgets import AcousticLab

t = np.arange(32000) / 16000
clips = [EvalClip(f"01-01-0{i + 1}-01-01-01-03", i, 3, (0.2 * np.sin(2 * np.pi * (150 + 60 * i) * t)).astype("f4"))
         for i in range(2)]
lab = AcousticLab(clips, {name: build_model(name, "quick") for name in ("audio_rev_sc", "audio_sum_pe")})
lab
"""

#: Every label, readout, text, box and control of the panel that is cut (its content wider than its box) or
#: reaches past the right edge of the cell's output.
OVERFLOWS = """() => {
  const panel = document.querySelector('.jp-OutputArea-output .widget-vbox');
  const edge = panel.closest('.jp-OutputArea-output').getBoundingClientRect().right;
  const cut = [];
  for (const el of panel.querySelectorAll(
      '.widget-label, .widget-readout, .widget-html-content, .widget-box, .widget-upload, select, audio, img')) {
    const what = `${el.className || el.tagName} "${(el.textContent || '').trim().slice(0, 40)}"`;
    if (el.scrollWidth > el.clientWidth + 1) cut.push(`${what}: content ${el.scrollWidth} px in ${el.clientWidth} px`);
    const right = el.getBoundingClientRect().right;
    if (right > edge + 1) cut.push(`${what}: ends at ${Math.round(right)} px, past the output's ${Math.round(edge)}`);
  }
  return cut;
}"""


@pytest.mark.browser
def test_the_acoustic_lab_fits_jupyterlab_and_takes_a_file(tmp_path, chromium):
    """The panel in JupyterLab at 1400, 1000 and 1920 px: nothing cut, nothing past the right edge; then a file
    chosen in its upload button (the browser's own file chooser) becomes the clip, and a text file is refused."""
    import nbformat
    import soundfile as sf
    from playwright.sync_api import sync_playwright

    from merlib.book import CHROMIUM_ARGS

    root = tmp_path / "root"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LAB_NOTEBOOK)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "lab.ipynb")
    t = np.arange(96000) / 48000
    sf.write(root / "voice.wav", np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1000 * t)], 1),
             48000)
    (root / "notes.wav").write_text("not a sound\n" * 50)

    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", "{args}"]
    with _server(command, tmp_path) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab['base']}/lab/tree/lab.ipynb?token={TOKEN}")
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)  # the kernel is connected
            page.click(".jp-Notebook .jp-Cell .cm-content")
            page.keyboard.press("Shift+Enter")
            page.wait_for_selector(".jp-OutputArea-output .widget-vbox img", timeout=90_000)
            for width in (1400, 1000, 1920):
                page.set_viewport_size({"width": width, "height": 1000})
                page.wait_for_timeout(500)  # JupyterLab lays the page out again
                assert page.evaluate(OVERFLOWS) == [], f"at {width} px"

            page.set_viewport_size({"width": 1400, "height": 1000})
            chooser = page.locator(".jp-OutputArea-output select").first

            def choose(path: Path) -> None:  # click the upload button, pick the file in the browser's file chooser
                with page.expect_file_chooser() as file_chooser:
                    page.click(".jp-OutputArea-output .widget-upload")
                file_chooser.value.set_files(str(path))

            choose(root / "voice.wav")
            page.wait_for_function("() => [...document.querySelectorAll('.jp-OutputArea-output select option')]"
                                   ".some(o => o.selected && o.textContent.includes('voice.wav'))", timeout=60_000)
            choose(root / "notes.wav")
            page.get_by_text("cannot decode notes.wav as audio").wait_for(timeout=60_000)
            assert "voice.wav" in chooser.input_value()  # the previous clip stays
            for width in (1400, 1000):
                page.set_viewport_size({"width": width, "height": 1000})
                page.wait_for_timeout(500)
                assert page.evaluate(OVERFLOWS) == [], f"at {width} px, with the error in the status line"
        finally:
            browser.close()

