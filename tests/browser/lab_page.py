"""Driving JupyterLab in a Playwright page: open a notebook, run it, save it, screenshot it, find its apps."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

from PIL import Image

VIEWPORT = {"width": 1280, "height": 800}
# Console messages that are not the page's fault, each with why it is harmless.
HARMLESS_CONSOLE = (
    # JupyterLab asks the server for its optional Jupyter AI / collaboration handlers and logs their 404s.
    "Failed to load resource: the server responded with a status of 404",
)


def watch_console(page) -> list[str]:
    """Collect the page's console errors and uncaught exceptions (harmless noise filtered) into a list."""
    errors: list[str] = []

    def on_console(message):
        if message.type == "error" and not any(noise in message.text for noise in HARMLESS_CONSOLE):
            errors.append(f"console: {message.text} at {message.location.get('url')}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    return errors


def accept_kernel_dialog(page) -> None:
    """Accept a "Select Kernel" dialog (the notebook's own kernel is preselected) if one is shown."""
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():
        dialog.first.click()


def open_notebook(page, server, name: str, timeout_s: float = 120) -> None:
    """Open notebook ``name`` in a workspace of its own and wait until its kernel is idle."""
    workspace = Path(name).stem.replace("_", "-")
    page.goto(f"{server.url}/lab/workspaces/{workspace}/tree/{name}?reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=60_000)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
    wait_idle(page, server, name, timeout_s)


def wait_idle(page, server, name: str, timeout_s: float, settle_s: float = 1.0) -> None:
    """Wait until the server reports the notebook's kernel idle twice, ``settle_s`` apart (dialogs accepted)."""
    deadline = time.monotonic() + timeout_s
    idle_since = None
    while time.monotonic() < deadline:
        accept_kernel_dialog(page)
        session = server.session(name)
        if session and session["kernel"]["execution_state"] == "idle":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= settle_s:
                return
        else:
            idle_since = None
        page.wait_for_timeout(250)
    raise TimeoutError(f"the kernel of {name} was not idle within {timeout_s} s")


def run_all(page, server, name: str, timeout_s: float) -> None:
    """Run every cell (JupyterLab's Run All), then wait for the kernel to go idle."""
    page.evaluate(
        """(ms) => Promise.race([
            window.jupyterapp.commands.execute('notebook:run-all-cells'),
            new Promise((_, reject) => setTimeout(() => reject(new Error('Run All took over ' + ms + ' ms')), ms)),
        ])""",
        int(timeout_s * 1000),
    )
    wait_idle(page, server, name, timeout_s)


def save(page) -> None:
    """Save the notebook (JupyterLab's Save), outputs and widget state included."""
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)


def screenshot(page, path: Path, part_height: int = 2400) -> Path:
    """A full-length PNG of the notebook as a 1280-pixel-wide window shows it: the notebook is scrolled a window
    at a time (``part_height`` tall) and the parts are stitched, down to its last cell (JupyterLab lets a notebook
    scroll a window's height past its end)."""
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    scroll_to = "([s, y]) => { const el = document.querySelector(s); el.scrollTop = y; return el.scrollTop; }"
    page.set_viewport_size({"width": VIEWPORT["width"], "height": part_height})
    try:
        page.evaluate(scroll_to, [scroller, 0])
        page.wait_for_timeout(300)
        box = page.evaluate(
            """(s) => { const el = document.querySelector(s); const r = el.getBoundingClientRect();
                const cells = el.querySelectorAll('.jp-Cell');
                const end = cells[cells.length - 1].getBoundingClientRect().bottom - r.top + el.scrollTop;
                const total = Math.min(el.scrollHeight, Math.ceil(end) + 40);
                return {top: r.top, left: r.left, width: r.width, client: el.clientHeight, total: total}; }""",
            scroller,
        )
        first = Image.open(io.BytesIO(page.screenshot()))  # the menu and toolbar above the notebook, too
        parts = [first.crop((0, 0, first.width, int(box["top"]) + min(box["client"], box["total"])))]
        clip = {"x": box["left"], "y": box["top"], "width": box["width"], "height": box["client"]}
        offset = box["client"]
        while offset < box["total"]:
            reached = page.evaluate(scroll_to, [scroller, offset])  # the last part scrolls less than asked
            page.wait_for_timeout(300)
            part = Image.open(io.BytesIO(page.screenshot(clip=clip)))
            parts.append(part.crop((0, offset - reached, part.width, min(part.height, box["total"] - reached))))
            offset += box["client"]
        page.evaluate(scroll_to, [scroller, 0])
    finally:
        page.set_viewport_size(VIEWPORT)
    stitched = Image.new("RGB", (VIEWPORT["width"], sum(p.height for p in parts)), "white")
    y = 0
    for i, part in enumerate(parts):
        stitched.paste(part, (0 if i == 0 else round(box["left"]), y))  # the notebook's parts, right of the sidebar
        y += part.height
    path.parent.mkdir(parents=True, exist_ok=True)
    stitched.save(path)
    return path


# In the page: the SHA-256 of every widget image's bytes, and tagging an app's box by the hash of its image.
IMAGE_HASHES = """async () => {
    const out = [];
    for (const img of document.querySelectorAll('.jp-OutputArea-output img.widget-image')) {
        const bytes = await (await fetch(img.src)).arrayBuffer();
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        out.push(Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''));
    }
    return out;
}"""
TAG_APP = """async ([hash, name]) => {
    for (const img of document.querySelectorAll('.jp-OutputArea-output img.widget-image')) {
        const bytes = await (await fetch(img.src)).arrayBuffer();
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        if (Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') === hash) {
            img.parentElement.setAttribute('data-app', name);
            return true;
        }
    }
    return false;
}"""
SHOWN = """async (name) => {
    const root = document.querySelector(`[data-app="${name}"]`);
    const img = root.querySelector(':scope > img.widget-image');
    const bytes = await (await fetch(img.src)).arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    const texts = Array.from(
        root.querySelectorAll('.widget-html-content'), (el) => el.innerText.split(/\\s+/).join(' ').trim());
    return {image: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''), src: img.src, texts};
}"""


def tag_app(page, app: dict) -> bool:
    """Mark the box of the app whose image the kernel describes with ``data-app=<its name>``; False if not shown."""
    return page.evaluate(TAG_APP, [app["image"], app["name"]])


def shown(page, name: str) -> dict:
    """What the browser shows of a tagged app: its image's hash and src, and the texts of its HTML widgets."""
    return page.evaluate(SHOWN, name)


def slider(page, name: str, description: str):
    """The slider labelled ``description`` inside the tagged app ``name``."""
    root = page.locator(f'[data-app="{name}"]')
    label = page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(description)}\s*$"))
    return root.locator(".widget-slider").filter(has=label).first


def readout(slider_locator) -> str:
    return slider_locator.locator(".widget-readout").inner_text().strip()


# In the page: what a learner would see as broken. Markdown table lines left as text (a table the renderer did not
# recognize, e.g. a row with an unescaped ``|``), and widgets whose content is wider than their box (clipped or
# scrolled sideways).
LAYOUT_PROBLEMS = """() => {
    const tables = [];
    for (const el of document.querySelectorAll('.jp-RenderedMarkdown p, .jp-RenderedMarkdown li')) {
        const rows = el.innerText.split('\\n').filter((line) => /^\\s*\\|.*\\|\\s*$/.test(line));
        if (rows.length) tables.push(rows[0].slice(0, 100));
    }
    const clipped = [];
    for (const el of document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets')) {
        const overflow = getComputedStyle(el).overflowX;
        if (el.scrollWidth > el.clientWidth + 2 && overflow !== 'visible') {
            clipped.push(`${el.className.split(' ').filter((c) => c.startsWith('widget-')).join('.')}: `
                + `${el.scrollWidth} px of content in ${el.clientWidth} px (${el.innerText.slice(0, 60)})`);
        }
    }
    return {tables, clipped};
}"""


def layout_problems(page) -> dict:
    """Markdown tables shown as text and clipped widgets in the open notebook."""
    return page.evaluate(LAYOUT_PROBLEMS)
