"""The dashboard in Chromium, as ``workbench app`` serves it: every tab renders its app, sliders answer the keyboard,
the page fits a 1280×800 screen, and the console stays clean. A full-page screenshot per tab goes to
``build/test-artifacts/browser/``.

Without Chromium the tests skip with one line saying how to install it, except under CI (``CI=true``), where they
fail.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.widgets.dashboard import TABS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts" / "browser"
VIEWPORT = {"width": 1280, "height": 800}
BUILD_TIMEOUT_MS = 180_000  # a tab's app on a loaded 2-core machine (a sweep, a scan, a recorded run)
PANEL = ".widget-tab-contents > .lm-Widget:not(.lm-mod-hidden)"  # the selected tab's content
# Voilà's page template also links Font Awesome from a CDN; its own bundle carries the same icons, so offline the
# failed request costs nothing.
HARMLESS = ("https://cdn.jsdelivr.net/npm/@fortawesome/",)


@pytest.fixture(scope="module")
def chromium(browser):
    """The browser package's Chromium (conftest.py): one Playwright serves every browser test, since a second
    sync Playwright cannot start while one runs."""
    return browser


@pytest.fixture(scope="module")
def app_url(chromium, tmp_path_factory):
    """``workbench app --no-browser`` running in a temporary folder; its printed URL."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "app", "--no-browser"],
        cwd=tmp_path_factory.mktemp("app"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = server.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert found, f"workbench app printed no URL: {line!r}"
        yield found.group(0)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


@pytest.fixture(scope="module")
def page(chromium, app_url):
    """The dashboard open at 1280×800 with its first tab shown; ``page.console_errors`` collects console errors."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(BUILD_TIMEOUT_MS)
    errors: list[str] = []

    def on_console(message):
        if message.type == "error" and not message.location.get("url", "").startswith(HARMLESS):
            errors.append(f"{message.text} at {message.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.console_errors = errors
    start = time.perf_counter()
    page.goto(app_url, timeout=BUILD_TIMEOUT_MS)
    page.locator(f"{PANEL} img").first.wait_for()
    page.first_render_s = time.perf_counter() - start
    yield page
    context.close()


def show_tab(page, index: int):
    """Click tab ``index`` and wait until its app's figure is shown; returns the panel."""
    page.locator(".lm-TabBar-tab").nth(index).click()
    panel = page.locator(PANEL)
    panel.locator("img").first.wait_for()
    assert "building…" not in panel.inner_text()
    return panel


def shoot(page, path: Path) -> None:
    """A full-page screenshot 1280 px wide: Voilà scrolls its page inside a box, so the window is made as tall as
    the box's content for the shot."""
    height = page.evaluate("Math.max(...[...document.querySelectorAll('body *')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height + 40)})
    try:
        page.screenshot(path=path, full_page=True)
    finally:
        page.set_viewport_size(VIEWPORT)


def texts(panel) -> list[str]:
    return panel.locator(".widget-html-content").all_inner_texts()


def fits_the_screen(page) -> None:
    """No horizontal scrolling, and every control and figure lies inside the window's width."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], f"the page is {width} px wide: it scrolls sideways"
    outside = page.evaluate(
        """width => [...document.querySelectorAll(
                 '.widget-inline-hbox, .widget-dropdown, .widget-button, .jupyter-widgets img, .widget-html')]
             .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > width + 0.5)
             .map(e => e.className + ' ' + Math.round(e.getBoundingClientRect().right))""",
        VIEWPORT["width"],
    )
    assert outside == [], f"clipped on the right: {outside}"


def test_the_first_tab_appears_with_the_tour(page):
    print(f"first render in the browser: {page.first_render_s:.1f} s")
    titles = page.locator(".lm-TabBar-tab").all_inner_texts()
    assert titles == [spec.title for spec in TABS]
    assert TABS[0].teaches in page.locator(PANEL).inner_text()


@pytest.mark.parametrize("index", range(len(TABS)))
def test_each_tab_renders_its_app_and_its_slider_answers_the_keyboard(page, index):
    spec = TABS[index]
    start = time.perf_counter()
    panel = show_tab(page, index)
    print(f"{spec.title}: shown in {time.perf_counter() - start:.1f} s")
    assert spec.teaches in panel.inner_text()
    fits_the_screen(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shoot(page, ARTIFACTS / f"dashboard-{index}-{spec.title.replace(' ', '-')}.png")

    image = panel.locator("img").first
    before_src, before_texts = image.get_attribute("src"), texts(panel)
    readout = panel.locator(".widget-readout").first.inner_text()
    handle = panel.locator(".noUi-handle").first
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([img, src]) => img.getAttribute('src') !== src", arg=[image.element_handle(), before_src], timeout=30_000
    )
    assert panel.locator(".widget-readout").first.inner_text() != readout
    page.wait_for_function(
        "([el, old]) => [...el.querySelectorAll('.widget-html-content')].map(e => e.innerText).join() !== old",
        arg=[panel.element_handle(), ",".join(before_texts)],
        timeout=30_000,
    )
    assert page.console_errors == []


def press_tab_until(page, selector: str, presses: int = 12) -> None:
    """Press Tab until the focused element is inside ``selector``."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.closest(s) !== null", selector):
            return
    pytest.fail(f"{presses} presses of Tab never reached {selector}")


def test_tabs_and_sliders_are_reached_and_moved_with_the_keyboard(page):
    show_tab(page, 0)
    page.locator("body").click(position={"x": 5, "y": 5})
    press_tab_until(page, ".lm-TabBar")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.locator(".lm-TabBar-tab.lm-mod-current").filter(has_text=TABS[1].title).wait_for(timeout=10_000)
    panel = page.locator(PANEL)
    readout = panel.locator(".widget-readout").first.inner_text()
    press_tab_until(page, f"{PANEL} .noUi-handle")  # past the explorer's dropdowns to its slider
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([el, old]) => el.innerText !== old",
        arg=[panel.locator(".widget-readout").first.element_handle(), readout],
        timeout=30_000,
    )
