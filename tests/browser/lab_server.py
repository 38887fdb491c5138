"""A JupyterLab server for browser tests: a temporary copy of the notebooks, no token, no news, kernels' files inside.

The server runs ``sys.executable -m jupyter lab`` on 127.0.0.1 at a free port, with its own config, settings,
workspaces and runtime folders under ``root``, and ``PYTHONPATH`` set to the repository under test, so the
kernels it starts import that checkout's ``workbench``. Its kernel websockets send without Nagle's delay
(``workbench.widgets.transport``, as ``workbench app`` and Binder do) unless ``nodelay=False``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from workbench.widgets.transport import CLASS_PATH, SETTING

REPO = Path(__file__).resolve().parents[2]

# User settings the server starts with: no news or update checks (a popup over the page, and a request to the
# internet), all cells attached to the page (windowing would leave off-screen cells, and their widgets, out of
# the DOM), and no dialog asking to confirm a kernel restart.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/sessionDialogs.jupyterlab-settings": {"skipKernelRestartDialog": True},
    # saved notebooks keep their widgets' state, so the HTML site can show each app as it was left
    "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
}
# The announcements plugin asks whether to fetch news in a toast on first start; disabled outright.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A running JupyterLab over a copy of ``notebooks`` in ``root``; ``url``, ``notebooks``, ``runtime_dir``."""

    def __init__(
        self,
        root: Path,
        notebooks: Path = REPO / "notebooks",
        repo: Path = REPO,
        timeout_s: float = 120,
        nodelay: bool = True,
    ):
        self.root = Path(root)
        self.notebooks = self.root / "notebooks"
        shutil.copytree(notebooks, self.notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.runtime_dir = self.root / "runtime"
        config_dir, settings_dir = self.root / "config", self.root / "settings"
        for folder in (self.runtime_dir, config_dir / "labconfig", settings_dir):
            folder.mkdir(parents=True)
        (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        for name, values in SETTINGS.items():
            path = settings_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
        env.update(JUPYTER_CONFIG_DIR=str(config_dir), JUPYTER_RUNTIME_DIR=str(self.runtime_dir))
        env.pop("MPLBACKEND", None)  # the kernels draw inline figures, as a learner's do
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            f"--ServerApp.root_dir={self.notebooks}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--LabApp.user_settings_dir={settings_dir}",
            f"--LabApp.workspaces_dir={self.root / 'workspaces'}",
            *([f"--ServerApp.{SETTING}={CLASS_PATH}"] if nodelay else []),
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        self.log = (self.root / "server.log").open("w")
        self.process = subprocess.Popen(command, cwd=self.notebooks, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_until_up(timeout_s)

    def _wait_until_up(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}; see {self.log.name}")
            try:
                self.api("status")
                return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"JupyterLab did not answer within {timeout_s} s; see {self.log.name}")

    def api(self, path: str):
        """GET ``/api/<path>`` and decode its JSON."""
        with urllib.request.urlopen(f"{self.url}/api/{path}", timeout=10) as response:
            return json.load(response)

    def session(self, notebook: str) -> dict | None:
        """The server's session of ``notebook`` (its kernel's id and execution state), if one is open."""
        return next((s for s in self.api("sessions") if s["path"] == notebook), None)

    def connection_file(self, kernel_id: str) -> Path:
        return self.runtime_dir / f"kernel-{kernel_id}.json"

    def stop(self) -> None:
        """Stop the server (its kernels with it)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
