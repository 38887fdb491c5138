"""Serve the dashboard notebook with Voilà on 127.0.0.1 until Ctrl-C: what ``workbench app`` runs.

The notebook (``workbench/app/dashboard.ipynb``, shipped as package data) is a title and ``Dashboard()``; Voilà runs
it in a kernel of this Python, in its folder (which holds no Python modules that could shadow others), and shows its
output without the code. Binder opens the same file through Jupyter Server's Voilà extension
(``?urlpath=voila/render/workbench/app/dashboard.ipynb``).

Example:
    >>> NOTEBOOK.name, NOTEBOOK.is_file()
    ('dashboard.ipynb', True)
    >>> 1024 <= check_port(None) <= 65535  # a free port
    True
    >>> check_port(70000)
    Traceback (most recent call last):
    ...
    ValueError: --port must be between 1 and 65535, got 70000
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

from tornado.ioloop import IOLoop

from .transport import CLASS_PATH, SETTING

NOTEBOOK = Path(__file__).resolve().parents[1] / "app" / "dashboard.ipynb"
HOST = "127.0.0.1"  # only this computer can open the app: its kernel runs code


def check_port(port: int | None) -> int:
    """``port`` if it can be listened on at ``HOST``, a free port if None; otherwise a ValueError saying why."""
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"--port must be between 1 and 65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port or 0))
        except OSError as error:
            raise ValueError(f"cannot listen on {HOST}:{port}: {error.strerror or error}") from None
        return probe.getsockname()[1]


def _say(line: str) -> None:
    print(line, flush=True)


def serve(
    port: int | None = None, open_browser: bool = True, notebook: Path = NOTEBOOK, say: Callable[[str], None] = _say
) -> int:
    """Run Voilà on ``notebook`` at ``HOST:port`` (a free port if None), ``say`` its URL once it listens, and serve
    until Ctrl-C (or SIGTERM); returns 0."""
    port = check_port(port)
    if not Path(notebook).is_file():
        raise ValueError(f"no dashboard notebook at {notebook}: reinstall workbench")
    app = voila_app(port, open_browser, notebook)
    url = f"http://{HOST}:{port}/"
    # Runs once the loop starts, which is after Voilà listens: the URL is printed when it can be opened.
    IOLoop.current().add_callback(say, f"workbench app: serving the dashboard at {url} (Ctrl-C to stop)")
    app.start()
    return 0


def voila_app(port: int, open_browser: bool, notebook: Path):
    """Voilà, initialized (not started) to serve ``notebook`` at ``HOST:port``, its kernel websockets without
    Nagle's delay (``transport.NoDelayConnection``)."""
    try:
        from voila.app import Voila
    except ImportError:
        raise ValueError(f"Voilà is not installed in {sys.prefix}: pip install voila") from None
    app = Voila()
    options = [f"--port={port}", f"--Voila.ip={HOST}", "--Voila.port_retries=0", f"--Voila.{SETTING}={CLASS_PATH}"]
    app.initialize([str(notebook), *options, *([] if open_browser else ["--no-browser"])])
    return app
