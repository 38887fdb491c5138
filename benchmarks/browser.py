"""Key press → new image in the browser, for every app, in JupyterLab in Chromium; and the settle time of a fast drag.

Run: PYTHONPATH=. .venv/bin/python benchmarks/browser.py [--presses 30] [--chromium /usr/bin/chromium]
Starts the browser tests' JupyterLab server on a notebook that shows every app as the notebooks do, presses an
arrow key on each app's slider and times, in the page (``performance.now()``), from the key event to the ``load``
of the new image. Then 20 presses with no pause: the settle time is from the first key event to the load of the
last image, which is the final value's (checked against the kernel). Kernel-side times are the apps' own
``update_ms`` over the same presses, so the rest is transport: comm message, PNG over the websocket, decode.
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# The browser tests' helpers are the package ``browser`` in tests/; this script's own folder (first on the path when
# it runs) would shadow it with this very file.
sys.path[:] = [str(REPO / "tests")] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

from browser.conftest import chromium_executable  # noqa: E402
from browser.kernel import Kernel  # noqa: E402
from browser.lab_page import VIEWPORT, open_notebook, run_all, shown, slider, tag_app  # noqa: E402
from browser.lab_server import LabServer  # noqa: E402

# The floor: an app that only swaps two PNGs of the tour's figure drawn beforehand (no model, no drawing), so its
# latency is the transport alone: the comm message in, the PNG out over the websocket, its decode in the page.
TRANSPORT = """import time
import ipywidgets as widgets
from workbench.widgets.app import App, figure_image
from workbench.widgets.controller import Controller
from workbench.widgets.sliders import fraction_slider


class Transport(App):
    def __init__(self, pngs):
        self.pngs, self.update_ms, self.state = pngs, [], {}
        self.slider, self.image, self.status = fraction_slider("step"), figure_image(), widgets.HTML()
        self.controller = Controller({"step": self.slider})
        self.controller.register(self.show)
        self.widget = widgets.VBox([self.slider, self.status, self.image])
        self.controller.refresh()

    def show(self, params):
        start = time.perf_counter()
        self.show_png(self.pngs[self.slider.index % 2])
        self.state = {"step": params["step"]}
        self.update_ms.append(1000 * (time.perf_counter() - start))
        self.status.value = f"step {self.slider.index}"


pngs = []
for sparsity in (0.31, 0.32):
    tour.slider.value = sparsity
    pngs.append(tour.image.value)
tour.slider.value = 0.0
transport = Transport(pngs)
transport"""
# Each app as its notebook makes it (the replay as the browser tests show it: no notebook shows it yet).
APPS = {
    "tour": "from workbench.widgets.tour import TourApp\ntour = TourApp()\ntour",
    "explorer": 'from workbench.widgets.explorer import Explorer\nexplorer = Explorer("mlp", split="test")\nexplorer',
    "board": 'from workbench.widgets.sensitivity_board import SensitivityBoard\nboard = SensitivityBoard("cnn")\nboard',
    "lab": 'from workbench.widgets.shrink_lab import ShrinkLab\nlab = ShrinkLab("cnn", split="test")\nlab',
    "replay": "from workbench.widgets.replay import ReplayApp\nreplay = ReplayApp(epochs=2)\nreplay",
    "transport": TRANSPORT,
}
LABELS = {
    "tour": "tour (mlp)",
    "explorer": "explorer (mlp, magnitude, unstructured)",
    "board": "sensitivity board (cnn, first layer)",
    "lab": "shrink lab (cnn, l1, filter)",
    "replay": "replay (mlp, magnitude, cubic)",
    "transport": "transport alone (two PNGs of the tour's figure, swapped)",
}
DRAG = 20
# Records, in the page, each key event on the app's slider and each load of its image.
WATCH = """([name, description]) => {
    const root = document.querySelector(`[data-app="${name}"]`);
    const img = root.querySelector(':scope > img.widget-image');
    const label = Array.from(root.querySelectorAll('.widget-slider')).find(
        (s) => s.querySelector('.widget-label').textContent.trim() === description);
    const times = {keys: [], loads: []};
    label.querySelector('.noUi-handle').addEventListener('keydown', () => times.keys.push(performance.now()), true);
    img.addEventListener('load', () => times.loads.push(performance.now()));
    window.benchTimes = window.benchTimes || {};
    window.benchTimes[name] = times;
}"""


# Before JupyterLab loads: the times of the kernel websocket's sends and receives, to split a press's latency into
# the page's part before its message leaves, the trip through server and kernel, and the page's part after.
SOCKET_LOG = """(() => {
    window.socketLog = {sent: [], received: []};
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
        if (this.url.includes('/api/kernels/')) {
            window.socketLog.sent.push(performance.now());
            if (!this.logged) {
                this.logged = true;
                this.addEventListener('message', () => window.socketLog.received.push(performance.now()));
            }
        }
        return send.call(this, data);
    };
})();"""


def split(key: float, load: float, log: dict) -> tuple[float, float, float]:
    """(key → message sent, sent → last message before the image received, received → image loaded) in ms."""
    sent = next(t for t in log["sent"] if t >= key)
    received = max(t for t in log["received"] if t <= load)
    return sent - key, received - sent, load - received


def write_notebook(folder: Path) -> str:
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in APPS.values()])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "browser_benchmark.ipynb")
    return "browser_benchmark.ipynb"


def times(page, name: str) -> dict:
    return page.evaluate("(name) => window.benchTimes[name]", name)


def wait_settled(page, kernel: Kernel, name: str, timeout_s: float = 120) -> dict:
    """Wait until the page shows the kernel's image and the kernel has nothing left to do; the kernel's state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app = kernel.probe("describe", name)
        applied = app["value"] == app["param"] and app["state_value"] in (None, app["value"])
        if applied and shown(page, name)["image"] == app["image"]:
            return app
        time.sleep(0.1)
    raise TimeoutError(f"{name}: the page never showed the kernel's image")


def press_latencies(page, kernel: Kernel, app: dict, presses: int):
    """Browser ms, kernel ms and ``split`` parts of ``presses`` single key presses, back and forth, each after the
    last settled."""
    name = app["name"]
    kernel_before = len(kernel.probe("update_times", name))
    handle = slider(page, name, app["description"]).locator(".noUi-handle")
    handle.focus()
    position, last = app["position"], app["positions"] - 1
    step = 1 if position < last else -1
    latencies, parts = [], []
    for _ in range(presses):
        if not 0 <= position + step <= last:
            step = -step
        before = len(times(page, name)["loads"])
        page.keyboard.press("ArrowRight" if step > 0 else "ArrowLeft")
        position += step
        page.wait_for_function("([n, k]) => window.benchTimes[n].loads.length > k", arg=[name, before], timeout=30_000)
        recorded = times(page, name)
        key, load = recorded["keys"][-1], recorded["loads"][before]
        latencies.append(load - key)
        parts.append(split(key, load, page.evaluate("() => window.socketLog")))
        wait_settled(page, kernel, name)
    return latencies, kernel.probe("update_times", name)[kernel_before:], parts


def drag(page, kernel: Kernel, app: dict) -> tuple[float, int, int]:
    """Settle time (ms) of ``DRAG`` presses with no pause, images the page loaded, and redraws the kernel did."""
    name = app["name"]
    app = kernel.probe("describe", name)
    slider(page, name, app["description"]).locator(".noUi-handle").focus()
    right = app["positions"] - 1 - app["position"] >= app["position"]
    loads_before, kernel_before = len(times(page, name)["loads"]), len(kernel.probe("update_times", name))
    keys_before = len(times(page, name)["keys"])
    for _ in range(DRAG):
        page.keyboard.press("ArrowRight" if right else "ArrowLeft")
    target = min(app["position"] + DRAG, app["positions"] - 1) if right else max(app["position"] - DRAG, 0)
    deadline = time.monotonic() + 120
    while (final := wait_settled(page, kernel, name))["position"] != target and time.monotonic() < deadline:
        time.sleep(0.2)
    if final["position"] != target:
        raise RuntimeError(f"{name}: the drag ended at step {final['position']}, not {target}")
    recorded = times(page, name)
    settle = recorded["loads"][-1] - recorded["keys"][keys_before]
    redraws = len(kernel.probe("update_times", name)) - kernel_before
    return settle, len(recorded["loads"]) - loads_before, redraws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presses", type=int, default=30, help="single key presses per app")
    parser.add_argument("--chromium", default=None, help="Chromium executable (default: as the browser tests find it)")
    parser.add_argument(
        "--plain-server",
        action="store_true",
        help="Jupyter Server's own kernel websocket (Nagle's delay on) instead of workbench.widgets.transport's",
    )
    args = parser.parse_args()
    executable = args.chromium or chromium_executable()
    if executable is None:
        sys.exit("no Chromium found: install it (apt-get install chromium) or pass --chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        root = Path(tmp)
        (root / "notebooks").mkdir()
        name = write_notebook(root / "notebooks")
        server = LabServer(root / "lab", notebooks=root / "notebooks", nodelay=not args.plain_server)
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(60_000)
            page.add_init_script(SOCKET_LOG)
            open_notebook(page, server, name)
            run_all(page, server, name, timeout_s=900)
            kernel = Kernel(server.connection_file(server.session(name)["kernel"]["id"]))
            print(
                f"Chromium {browser.version}, JupyterLab on 127.0.0.1 "
                f"({'plain kernel websocket' if args.plain_server else 'kernel websocket without Nagle delay'}), "
                f"{args.presses} presses per app, "
                f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start\n"
            )
            print(
                "| app | key press → image shown: median | p90 | max (ms) | page out / server+kernel / page in "
                f"(median ms) | kernel update median (ms) | {DRAG}-press drag: settle (ms) | images shown "
                "| kernel redraws |\n|---|---|---|---|---|---|---|---|---|"
            )
            for app_name, label in LABELS.items():
                app = kernel.probe("describe", app_name)
                if not tag_app(page, app):
                    raise RuntimeError(f"{app_name}: its image is not in the page")
                page.evaluate(WATCH, [app_name, app["description"]])
                browser_ms, kernel_ms, parts = press_latencies(page, kernel, app, args.presses)
                settle, images, redraws = drag(page, kernel, app)
                out, trip, back = (statistics.median(p) for p in zip(*parts))
                print(
                    f"| {label} | {statistics.median(browser_ms):.0f} | {np.percentile(browser_ms, 90):.0f} "
                    f"| {max(browser_ms):.0f} | {out:.0f} / {trip:.0f} / {back:.0f} "
                    f"| {statistics.median(kernel_ms):.0f} | {settle:.0f} | {images} | {redraws} |",
                    flush=True,
                )
            print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
            kernel.close()
        finally:
            browser.close()
            server.stop()


if __name__ == "__main__":
    main()
