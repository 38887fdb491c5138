"""The Binder environment (binder/requirements.txt) pins every runtime dependency, serves the dashboard at the
second badge's URL, and runs the notebooks.

repo2docker builds the Binder image with ``pip install -r binder/requirements.txt`` run from the repository root; the
slow test below does the same in a fresh virtual environment and then checks what only that environment can show:
the pinned set installs, the package is installed with its data, Voilà's server extension is enabled, so that Jupyter
Server (what Binder runs) answers the badge's ``voila/render/...`` URL with the dashboard, and a notebook runs there.
(The main test suite already runs every notebook with nbval in the development environment.)
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import binder_env
import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
README = ROOT / "README.md"
NOTEBOOK_RUN_IN_BINDER = "notebooks/00_tour.ipynb"  # one notebook proves the kernel side; nbval runs them all elsewhere


def _requirement_lines() -> list[str]:
    lines = []
    for raw in (BINDER / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _pins() -> dict[str, Requirement]:
    """Named requirements of binder/requirements.txt by canonical name (options and paths left out)."""
    pins = {}
    for line in _requirement_lines():
        if line.startswith("-") or line.startswith(".") or "/" in line:
            continue
        req = Requirement(line)
        pins[canonicalize_name(req.name)] = req
    return pins


def _exact_version(req: Requirement) -> str | None:
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        return specs[0].version
    return None


def test_binder_pins_every_runtime_dependency_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for dep in project["dependencies"]:
        wanted = Requirement(dep)
        name = canonicalize_name(wanted.name)
        assert name in pins, f"{wanted.name} is a runtime dependency but is not in binder/requirements.txt"
        version = _exact_version(pins[name])
        assert version is not None, f"{pins[name]} must be pinned with a single '=='"
        assert wanted.specifier.contains(version, prereleases=True), (
            f"binder pins {wanted.name}=={version}, outside pyproject's {wanted.specifier}"
        )


def test_binder_uses_cpu_torch_and_installs_the_repo():
    lines = _requirement_lines()
    assert f"--extra-index-url {CPU_INDEX}" in lines
    torch_version = _exact_version(_pins()["torch"])
    assert torch_version is not None and torch_version.endswith("+cpu"), "torch must be pinned to a +cpu build"
    # repo2docker runs pip from the repository root, so "." is this repo's pyproject.toml.
    assert "." in lines
    assert re.fullmatch(r"python-3\.\d+", (BINDER / "runtime.txt").read_text().strip())


def _venv_available() -> bool:
    return importlib.util.find_spec("venv") is not None and importlib.util.find_spec("ensurepip") is not None


def dashboard_badge_path() -> str:
    """The notebook path in the README's Binder badge that opens the dashboard (``?urlpath=voila/render/PATH``)."""
    found = re.findall(r"mybinder\.org/v2/gh/[^)\s]*\?urlpath=voila/render/([^)\s&]+)", README.read_text())
    assert len(found) == 1, f"the README needs one Binder badge opening the dashboard with Voilà, found {found}"
    return found[0]


def test_the_dashboard_badge_opens_the_shipped_dashboard_notebook():
    from workbench.widgets.serve import NOTEBOOK

    assert ROOT / dashboard_badge_path() == NOTEBOOK


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, server: subprocess.Popen, timeout_s: float) -> tuple[int, str]:
    """GET ``url`` once ``server`` answers (retrying while it starts); its status and text."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None:
                return 0, f"the server exited with status {server.returncode} before answering"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.skipif(not _venv_available(), reason="python3 -m venv (with ensurepip) is not available")
def test_binder_environment_serves_the_dashboard_and_runs_a_notebook(tmp_path, request):
    # binder_env builds the environment in the background from the start of the session: a fresh venv,
    # then `pip install -r binder/requirements.txt` from the repository root, exactly what repo2docker does
    python = str(binder_env.installed(request.config))
    env = binder_env.environment()

    def run(*cmd: str, timeout: float = 600, cwd: Path = ROOT) -> str:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        return done.stdout + done.stderr

    # The package is installed (not run from this checkout) with its data: the dashboard notebook.
    script = "from workbench.widgets.serve import NOTEBOOK; print(NOTEBOOK.is_file(), NOTEBOOK)"
    shipped = run(python, "-c", script, cwd=tmp_path)  # away from this checkout's workbench/
    assert shipped.startswith("True ") and str(ROOT / "workbench") not in shipped, shipped

    # binder/postBuild, as repo2docker runs it, has Jupyter Server use the kernel websocket without Nagle's delay.
    env["HOME"] = str(tmp_path / "home")
    run("bash", str(ROOT / "binder" / "postBuild"))
    config = run(python, "-m", "jupyter", "server", "--show-config", cwd=tmp_path)
    assert "workbench.widgets.transport.NoDelayConnection" in config, config[-3000:]

    # Voilà's server extension is enabled, so Jupyter Server answers the badge's voila/render/... URL.
    extensions = run(python, "-m", "jupyter", "server", "extension", "list")
    assert re.search(r"voila\b.*enabled", extensions), extensions
    port = _free_port()
    server = subprocess.Popen(
        [python, "-m", "jupyter", "server", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
         "--IdentityProvider.token=", f"--ServerApp.root_dir={ROOT}", "--allow-root"],  # root in containers
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        status, page = _get(f"http://127.0.0.1:{port}/voila/render/{dashboard_badge_path()}", server, timeout_s=300)
    finally:
        server.terminate()
        _, log = server.communicate(timeout=60)
    assert status == 200, f"HTTP {status}: {page[-2000:]}\n{log[-3000:]}"
    assert "application/vnd.jupyter.widget-view+json" in page, page[-2000:]
    assert "There was an error" not in page and "could not build" not in page, page[-3000:]

    # A notebook runs in that environment (the test tools on top: they are not part of the Binder image).
    run(python, "-m", "pip", "install", "--no-compile", "pytest", "nbval")
    output = run(
        python, "-m", "pytest", NOTEBOOK_RUN_IN_BINDER,
        "--nbval-lax", "--nbval-current-env",
        "-p", "no:cacheprovider",
        # ignore pyproject's pytest settings (testpaths, --doctest-modules, ...)
        "-c", os.devnull, "--rootdir", str(ROOT), "-o", "addopts=",
        "-q",
        timeout=900,
    )  # fmt: skip
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) > 0, output[-4000:]
