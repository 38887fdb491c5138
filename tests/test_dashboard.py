"""The dashboard (every app in tabs, built when first selected) and ``workbench app``, which serves it with Voilà."""

from __future__ import annotations

import fnmatch
import html
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import ipywidgets as widgets
import pytest
import tomllib

from workbench.cli import main
from workbench.widgets.app import App
from workbench.widgets.dashboard import TABS, Dashboard, TabSpec
from workbench.widgets.serve import NOTEBOOK

ROOT = Path(__file__).resolve().parents[1]


def first_slider(app: App):
    """The slider a learner moves first: the app's one slider, or the sensitivity board's first layer."""
    return app.slider if hasattr(app, "slider") else next(iter(app.sliders.values()))


def move(slider) -> None:
    """One step along the slider, as an arrow key press does (forward, or back at the end)."""
    if isinstance(slider, widgets.IntSlider):
        slider.value = slider.value + 1 if slider.value < slider.max else slider.value - 1
    elif isinstance(slider, widgets.SelectionSlider):
        slider.index = slider.index + 1 if slider.index < len(slider.options) - 1 else slider.index - 1
    else:
        slider.index = slider.index + 1 if slider.value < slider.max else slider.index - 1


@pytest.fixture(scope="module")
def dashboard():
    return Dashboard()


def test_only_the_first_tab_is_built_at_start(dashboard):
    assert list(dashboard.apps) == ["tour"] and dashboard.tab.selected_index == 0
    assert dashboard.errors == {}
    for spec, box in zip(dashboard.specs[1:], dashboard.boxes[1:]):
        assert spec.title not in dashboard.apps
        assert "building…" in box.children[-1].value  # what a learner sees while the app is built


def test_every_tab_says_in_one_line_what_it_teaches(dashboard):
    assert [spec.title for spec in TABS] == [
        "tour",
        "explorer",
        "sensitivity",
        "shrink lab",
        "what it buys",
        "over time",
    ]
    assert dashboard.tab.titles == tuple(spec.title for spec in TABS)
    for spec, box in zip(TABS, dashboard.boxes):
        assert spec.teaches.endswith(".") and "\n" not in spec.teaches and len(spec.teaches) < 160
        assert html.escape(spec.teaches) in box.children[0].value


@pytest.mark.parametrize("index", range(len(TABS)))
def test_each_tab_builds_its_app_when_selected_and_the_app_works(dashboard, index):
    dashboard.tab.selected_index = index  # what a click on the tab does
    title = TABS[index].title
    app = dashboard.app
    assert dashboard.errors == {} and app is dashboard.apps[title]
    assert dashboard.boxes[index].children[-1] is app.widget
    assert dashboard.build_s[title] < 60
    image, status = app.image.value, app.status.value
    assert image[:4] == b"\x89PNG" and status
    move(first_slider(app))
    assert app.image.value != image and app.status.value != status
    assert "error" not in app.state or app.state["error"] is None


def test_a_built_tab_is_not_built_again(dashboard):
    dashboard.tab.selected_index = 0
    tour = dashboard.app
    dashboard.tab.selected_index = 1
    dashboard.tab.selected_index = 0
    assert dashboard.app is tour and dashboard.boxes[0].children[-1] is tour.widget


def test_a_tab_that_fails_to_build_says_why_and_the_others_work():
    class Fine(App):
        def __init__(self):
            self.widget = widgets.HTML("fine")

    def broken() -> App:
        raise ValueError("no such model:\n'mlp9'")

    board = Dashboard([TabSpec("fine", "works.", Fine), TabSpec("broken", "fails.", broken)])
    board.tab.selected_index = 1
    assert board.app is None and board.errors == {"broken": "ValueError: no such model:\n'mlp9'"}
    shown = board.boxes[1].children[-1].value
    assert "could not build: ValueError: no such model: &#x27;mlp9&#x27;" in shown and "\n" not in shown
    board.tab.selected_index = 0
    assert board.app.widget.value == "fine"


def test_the_dashboard_notebook_is_package_data():
    assert NOTEBOOK == ROOT / "workbench" / "app" / "dashboard.ipynb"
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["workbench"]
    assert any(fnmatch.fnmatch("app/dashboard.ipynb", pattern) for pattern in patterns)
    assert not list(NOTEBOOK.parent.glob("*.py"))  # the kernel runs in this folder: no module there may shadow others
    text = NOTEBOOK.read_text()
    assert "Dashboard()" in text and '"outputs": []' in text  # tiny, and shipped without outputs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["app", "--port", "0"], "workbench app: --port must be between 1 and 65535, got 0\n"),
        (["app", "--port", "65536"], "workbench app: --port must be between 1 and 65535, got 65536\n"),
    ],
)
def test_app_refuses_a_bad_port_in_one_line(capsys, argv, message):
    assert main(argv) == 2
    assert capsys.readouterr().err == message


def test_app_refuses_a_port_in_use(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["app", "--port", str(port), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"workbench app: cannot listen on 127.0.0.1:{port}: ") and err.count("\n") == 1


def test_app_serves_the_dashboard_until_interrupted(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "workbench.cli", "app", "--no-browser"]
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a runner started as a background job ignores SIGINT, and a child would inherit that: Ctrl-C must count
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = server.stdout.readline()  # blocks until the server listens (or exits)
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, f"no URL printed: {line!r}"
        start = time.perf_counter()
        with urllib.request.urlopen(found.group(0), timeout=180) as response:
            status, page = response.status, response.read().decode()
        print(f"first render of the dashboard: {time.perf_counter() - start:.1f} s")
        assert status == 200
        assert "<title>workbench" in page  # the notebook's title
        assert "application/vnd.jupyter.widget-view+json" in page  # the Dashboard, displayed
        assert "could not build" not in page and "There was an error" not in page
        server.send_signal(signal.SIGINT)  # Ctrl-C
        # read both pipes to the end while waiting: a server blocked on a full stderr pipe could never exit
        _, errors = server.communicate(timeout=180)
        assert server.returncode == 0, errors[-2000:]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()
        server.stderr.close()


def test_the_app_serves_kernel_websockets_without_nagle_delay():
    from workbench.widgets.serve import NOTEBOOK, check_port, voila_app
    from workbench.widgets.transport import NoDelayConnection

    app = voila_app(check_port(None), open_browser=False, notebook=NOTEBOOK)
    assert app.kernel_websocket_connection_class is NoDelayConnection
