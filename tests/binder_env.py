"""The Binder environment for tests/test_binder.py: ``pip install -r binder/requirements.txt`` in a fresh virtual
environment, as repo2docker runs it, started in the background as soon as the session knows that test will run.

The install takes minutes, but mostly waiting on the package indexes and the disk rather than the CPU, so building
it while the other tests run hides most of it. The session starts it once the test is collected: in the pytest
process (``pytest_collection_finish``), or under xdist in the controller when a worker reports its collection
(``pytest_xdist_node_collection_finished``); workers find its folder in ``workerinput``. The test waits for it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/test_binder.py::test_binder_environment_serves_the_dashboard_and_runs_a_notebook"
INSTALL_TIMEOUT_S = 1500
KEY = "binder_env"  # the folder's key in xdist's workerinput
_folder = pytest.StashKey[Path]()
_build = pytest.StashKey[subprocess.Popen]()


def environment() -> dict[str, str]:
    """The environment the Binder venv's commands run in: this one without the caller's virtualenv or paths."""
    env = dict(os.environ)
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(name, None)
    env["MPLBACKEND"] = "Agg"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Where download.pytorch.org (the --extra-index-url in the file) cannot be reached, pip's
    # default retries would spend minutes on it; with no retries it fails fast and pip goes on
    # with its other sources (find-links, a mirror).
    env["PIP_RETRIES"] = "0"
    return env


# Exactly what repo2docker does: the Binder file alone, from the repository root.
# --no-compile only skips writing .pyc files at install time; Python compiles on import.
BUILD = """
set -u
"$PYTHON" -m venv "$FOLDER/venv" && "$FOLDER/venv/bin/python" -m pip install --no-compile -r binder/requirements.txt
echo $? > "$FOLDER/status.tmp" && mv "$FOLDER/status.tmp" "$FOLDER/status"
"""


def configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        config.stash[_folder] = Path(tempfile.mkdtemp(prefix="workbench-binder-"))


def configure_node(node) -> None:
    node.workerinput[KEY] = str(node.config.stash[_folder])


def start_if_collected(config: pytest.Config, nodeids: list[str]) -> None:
    """Start the build (once) if ``nodeids`` hold the test that needs it."""
    if _build in config.stash or TEST not in nodeids or config.option.collectonly:
        return
    folder = config.stash[_folder]
    env = {**environment(), "PYTHON": sys.executable, "FOLDER": str(folder)}
    with (folder / "install.log").open("w") as log:
        config.stash[_build] = subprocess.Popen(
            ["bash", "-c", BUILD],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that stopping it stops pip too
        )


def unconfigure(config: pytest.Config) -> None:
    """Stop a build the session did not wait for, and remove the environment."""
    build = config.stash.get(_build, None)
    if build is not None and build.poll() is None:
        os.killpg(build.pid, signal.SIGTERM)
        build.wait()
    if _folder in config.stash:
        shutil.rmtree(config.stash[_folder], ignore_errors=True)


def installed(config: pytest.Config) -> Path:
    """Wait for the build; the venv's ``python`` once pip has installed binder/requirements.txt (fails otherwise)."""
    folder = Path(config.workerinput[KEY]) if hasattr(config, "workerinput") else config.stash[_folder]
    assert (folder / "install.log").exists(), f"the Binder environment was not started ({TEST} not collected?)"
    status, deadline = folder / "status", time.monotonic() + INSTALL_TIMEOUT_S
    while not status.exists():
        assert time.monotonic() < deadline, f"pip install -r binder/requirements.txt ran over {INSTALL_TIMEOUT_S} s"
        time.sleep(1)
    log = (folder / "install.log").read_text()
    assert status.read_text().strip() == "0", f"pip install -r binder/requirements.txt failed:\n{log[-8000:]}"
    return folder / "venv" / "bin" / "python"
