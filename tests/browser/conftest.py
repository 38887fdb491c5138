"""Fixtures for the browser tests: Chromium, one JupyterLab server, pages, and notebooks run once and reused.

Chromium is found at ``$WORKBENCH_CHROMIUM``, ``/usr/bin/chromium`` or ``chromium`` on the PATH; without it the
tests skip with a line saying how to install it, except under CI (``CI=true``), where they fail.
Screenshots and executed notebooks go to ``build/test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .kernel import Kernel
from .lab_page import VIEWPORT, layout_problems, open_notebook, run_all, save, screenshot, watch_console
from .lab_server import REPO, LabServer

ARTIFACTS = REPO / "build" / "test-artifacts" / "browser"
INSTALL = "install Chromium (Debian/Ubuntu: apt-get install chromium) or set WORKBENCH_CHROMIUM to its path"
RUN_TIMEOUT_S = 600  # one notebook's Run All, generous for a loaded 2-core machine


def chromium_executable() -> str | None:
    """The Chromium to drive: ``$WORKBENCH_CHROMIUM`` if set, else ``/usr/bin/chromium`` or one on the PATH."""
    if os.environ.get("WORKBENCH_CHROMIUM"):
        candidates = [os.environ["WORKBENCH_CHROMIUM"]]
    else:
        candidates = ["/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")]
    return next((c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


def unavailable(reason: str):
    """Fail under CI (a browser test that cannot run is a broken set-up there), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser():
    """Chromium, headless, driven by Playwright for the whole browser package."""
    executable = chromium_executable()
    if executable is None:
        unavailable(f"no Chromium found: {INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is missing: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        # Chromium's sandbox cannot start as root (containers, CI); the page only ever loads the local server.
        args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        chromium = playwright.chromium.launch(executable_path=executable, args=args)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def lab_server(tmp_path_factory, browser):
    """One JupyterLab server over a temporary copy of notebooks/ (needs the browser, so it skips with it)."""
    server = LabServer(tmp_path_factory.mktemp("jupyterlab"))
    yield server
    server.stop()


def new_page(browser):
    """A page in a fresh 1280×800 browser context; ``page.console_errors`` collects its console errors."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.console_errors = watch_console(page)
    return page


@pytest.fixture
def page(browser):
    """A fresh page for one test (closed after it)."""
    page = new_page(browser)
    yield page
    page.context.close()


@dataclass
class NotebookRun:
    """A notebook opened and run once: its open page, kernel client, saved executed notebook and screenshot."""

    name: str
    page: object
    kernel: Kernel
    ipynb: dict
    saved: Path
    screenshot: Path
    console_errors: list[str]
    layout: dict  # lab_page.layout_problems after the run: markdown tables left as text, clipped widgets
    seconds: float


@pytest.fixture(scope="package")
def notebook_run(browser, lab_server):
    """``notebook_run(name)``: the ``NotebookRun`` of notebook ``name`` in the server's folder, run on first use."""
    runs: dict[str, NotebookRun | BaseException] = {}

    def run(name: str) -> NotebookRun:
        if name not in runs:
            try:
                runs[name] = _run(browser, lab_server, name)
            except Exception as error:  # later users see the same failure instead of running it again
                runs[name] = error
                raise
        if isinstance(runs[name], BaseException):
            raise RuntimeError(f"running {name} failed earlier") from runs[name]
        return runs[name]

    yield run
    for done in runs.values():
        if isinstance(done, NotebookRun):
            done.kernel.close()
            done.page.context.close()


def _run(browser, server: LabServer, name: str) -> NotebookRun:
    start = time.monotonic()
    page = new_page(browser)
    open_notebook(page, server, name)
    run_all(page, server, name, RUN_TIMEOUT_S)
    save(page)
    saved = ARTIFACTS / name
    saved.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(server.notebooks / name, saved)
    shot = screenshot(page, ARTIFACTS / f"{Path(name).stem}.png")
    kernel = Kernel(server.connection_file(server.session(name)["kernel"]["id"]))
    ipynb = json.loads(saved.read_text())
    layout = layout_problems(page)
    return NotebookRun(name, page, kernel, ipynb, saved, shot, page.console_errors, layout, time.monotonic() - start)
