"""Every workbench app shown in a notebook, in the browser: its slider moved with the keyboard, set from code, and
dragged fast, with the kernel's state checked against what the page shows after each.

Apps are found by what the page shows (the widget image whose bytes equal an app's image in the kernel), not by
cell index. An app that no notebook shows yet is shown by a notebook made for this test (``EXTRA``).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import time

import pytest

from .lab_page import readout, shown, slider, tag_app
from .lab_server import REPO

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXTRA = "apps_not_in_notebooks.ipynb"
# Apps that no notebook shows yet, and the code that shows each (a notebook cell of EXTRA).
NOT_IN_NOTEBOOKS = {
    "ReplayApp": "from workbench.widgets.replay import ReplayApp\n\nreplay = ReplayApp(epochs=2)\nreplay"
}
FAST_PRESSES = 20


def app_classes() -> set[str]:
    """Names of the App subclasses in ``workbench.widgets``."""
    import workbench.widgets
    from workbench.widgets.app import App

    for module in pkgutil.iter_modules(workbench.widgets.__path__):
        importlib.import_module(f"workbench.widgets.{module.name}")
    found, todo = set(), [App]
    while todo:
        for cls in todo.pop().__subclasses__():
            found.add(cls.__name__)
            todo.append(cls)
    return found


def code_of(path) -> str:
    return "\n".join(
        "".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"
    )


CLASSES = app_classes()
SHOWN = sorted({(path.name, cls) for path in NOTEBOOKS for cls in CLASSES if re.search(rf"\b{cls}\(", code_of(path))})
CASES = SHOWN + [(EXTRA, cls) for cls in sorted(NOT_IN_NOTEBOOKS) if cls not in {c for _, c in SHOWN}]
IDS = [f"{notebook.removesuffix('.ipynb')}-{cls}" for notebook, cls in CASES]


def test_every_app_is_browser_tested():
    assert CLASSES, "no App subclass found in workbench.widgets"
    assert {cls for _, cls in CASES} >= CLASSES, "an app is in no notebook: add it to NOT_IN_NOTEBOOKS"


def write_extra(folder) -> None:
    """The notebook that shows the apps no notebook shows."""
    import nbformat

    cells = [nbformat.v4.new_code_cell(code) for code in NOT_IN_NOTEBOOKS.values()]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / EXTRA)


@pytest.fixture
def shown_apps(notebook_run, lab_server):
    """``shown_apps(notebook, cls)``: the notebook's run and the kernel's descriptions of its ``cls`` apps, each
    tagged in the page (``data-app``) by its image."""

    def find(notebook: str, cls: str):
        if notebook == EXTRA and not (lab_server.notebooks / EXTRA).exists():
            write_extra(lab_server.notebooks)
        run = notebook_run(notebook)
        apps = [app for app in run.kernel.probe("describe_all") if app["cls"] == cls]
        assert apps, f"{notebook} holds no {cls} under a name"
        untagged = [app["name"] for app in apps if not tag_app(run.page, app)]
        assert not untagged, f"{untagged} of {notebook}: no image in the page shows the app's image"
        return run, apps

    return find


def consistent(kernel: dict, page: dict, position: int) -> bool:
    """The kernel's slider is at ``position``, its app has drawn that value, and the page shows the drawing."""
    applied = kernel["value"] == kernel["param"] and kernel["state_value"] in (None, kernel["value"])
    return (
        kernel["position"] == position
        and applied
        and page["image"] == kernel["image"]
        and kernel["status"] in page["texts"]
    )


def settled(run, app: dict, position: int, timeout_s: float = 120) -> tuple[dict, dict]:
    """Wait until two looks in a row find the kernel and the page ``consistent`` at ``position`` and unchanged;
    return the kernel's description and what the page shows (the last seen, on timeout).

    Two looks, because JupyterLab hands the browser's widget messages to a kernel subshell, a thread of its own,
    so a look from the main shell can land while an update is half done."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        kernel = run.kernel.probe("describe", app["name"])
        page = shown(run.page, app["name"])
        if consistent(kernel, page, position) and (kernel, page["image"]) == last:
            return kernel, page
        if time.monotonic() > deadline:
            return kernel, page
        last = (kernel, page["image"]) if consistent(kernel, page, position) else None
        time.sleep(0.2)


def assert_consistent(run, app: dict, kernel: dict, page: dict, position: int) -> None:
    """The kernel is at ``position`` and shows its value everywhere; the page shows the kernel's image, status and
    readout."""
    value = run.kernel.probe("value_at", app["name"], position)
    assert kernel["position"] == position
    assert kernel["value"] == kernel["param"] == value, "the controller holds another value than the slider"
    if kernel["state_value"] is not None:
        assert kernel["state_value"] == value, "the app's state is of another value"
    assert readout(slider(run.page, app["name"], app["description"])) == kernel["readout"]
    assert page["image"] == kernel["image"], "the page shows another image than the kernel's"
    assert kernel["status"] in page["texts"], "the page shows another status than the kernel's"
    assert kernel["error"] is None


def press(run, app: dict, times: int) -> int:
    """Press an arrow key ``times`` times, without pause, on the app's slider (towards the side with more room);
    returns the position it should end at."""
    handle = slider(run.page, app["name"], app["description"]).locator(".noUi-handle")
    handle.focus()
    last = app["positions"] - 1
    right = last - app["position"] >= app["position"]
    for _ in range(times):
        run.page.keyboard.press("ArrowRight" if right else "ArrowLeft")
    return min(app["position"] + times, last) if right else max(app["position"] - times, 0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_key_press_moves_the_slider_and_redraws(shown_apps, case):
    run, apps = shown_apps(*case)
    for app in apps:
        target = press(run, app, 1)
        kernel, page = settled(run, app, target)
        assert_consistent(run, app, kernel, page, target)
        assert kernel["image"] != app["image"], "the image did not change"
        assert kernel["status"] != app["status"], "the status did not change"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_value_set_from_code_is_shown_and_kept(shown_apps, case):
    """The slider echo: values set in one cell reach the browser, which must not send an old one back."""
    run, apps = shown_apps(*case)
    for app in apps:
        last = app["positions"] - 1
        steps = [round(last / 3), last // 2, round(last * 10 / 11), last]  # 90 of 99: 0.9, which a float snaps off
        steps = steps if app["position"] != last else steps[::-1]
        run.kernel.probe("set_values", app["name"], steps)
        kernel, page = settled(run, app, steps[-1])
        run.page.wait_for_timeout(1000)  # an echo of an earlier value would have reached the kernel by now
        kernel, page = settled(run, app, steps[-1], timeout_s=5)
        assert_consistent(run, app, kernel, page, steps[-1])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_fast_drag_ends_on_the_last_value(shown_apps, case):
    """Twenty key presses with no pause: the kernel ends on the last value and the page shows its image."""
    run, apps = shown_apps(*case)
    for app in apps:
        app = run.kernel.probe("describe", app["name"])
        target = press(run, app, FAST_PRESSES)
        kernel, page = settled(run, app, target)
        assert_consistent(run, app, kernel, page, target)
        assert run.kernel.probe("redrawn_image", app["name"]) == kernel["image"], "not the image of the last value"
