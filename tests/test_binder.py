"""The Binder environment (binder/requirements.txt) pins every runtime dependency and runs the notebooks.

repo2docker builds the Binder image with ``pip install -r binder/requirements.txt`` run from the
repository root; the slow test below does the same in a fresh virtual environment and then runs
every notebook with nbval, so a missing or wrong pin shows up here rather than on mybinder.org.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


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


@pytest.mark.slow
@pytest.mark.skipif(not _venv_available(), reason="python3 -m venv (with ensurepip) is not available")
@pytest.mark.skipif(not any(ROOT.glob("notebooks/*.ipynb")), reason="no notebooks to run")
def test_binder_environment_runs_the_notebooks(tmp_path):
    venv = tmp_path / "binder-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")

    env = dict(os.environ)
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    env["MPLBACKEND"] = "Agg"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Where download.pytorch.org (the --extra-index-url in the file) cannot be reached, pip's
    # default retries would spend minutes on it; with no retries it fails fast and pip goes on
    # with its other sources (find-links, a mirror).
    env["PIP_RETRIES"] = "0"

    def pip(*args: str) -> None:
        # --no-compile only skips writing .pyc files at install time; Python compiles on import.
        cmd = [python, "-m", "pip", "install", "--no-compile", *args]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"

    # Exactly what repo2docker does: the Binder file alone, from the repository root.
    pip("-r", "binder/requirements.txt")
    # The test tools only, on top (they are not part of the Binder image).
    pip("pytest", "nbval")

    cmd = [
        python, "-m", "pytest", "notebooks/",
        "--nbval-lax", "--nbval-current-env",
        "-p", "no:cacheprovider",
        # ignore pyproject's pytest settings (testpaths, --doctest-modules, ...)
        "-c", os.devnull, "--rootdir", str(ROOT), "-o", "addopts=",
        "-q",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) > 0, output[-4000:]
