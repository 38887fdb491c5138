"""An HTML site of the notebooks: each executed, with its figures, and a still of every widget as it was left.

A live widget needs a kernel; a page read on the web has none. So each widget output becomes static HTML drawn
from the widget state the run saved: an app's figure as its PNG, its status line, its controls with their values.

Example:
    >>> import tempfile
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A title"),
    ...                                      nbformat.v4.new_code_cell("print(6 * 7)")])
    >>> folder = Path(tempfile.mkdtemp())
    >>> nbformat.write(nb, folder / "answer.ipynb")
    >>> index = build_site([folder / "answer.ipynb"], folder / "site")
    >>> "42" in (folder / "site" / "answer.html").read_text(), "A title" in index.read_text()
    (True, True)
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BOXES = {"VBoxModel": "column", "HBoxModel": "row", "BoxModel": "row", "GridBoxModel": "row"}
SLIDERS = {"FloatSliderModel", "IntSliderModel", "SelectionSliderModel", "FloatLogSliderModel", "PlayModel"}
CHOOSERS = {"DropdownModel", "ToggleButtonsModel", "RadioButtonsModel", "SelectModel"}


def build_site(notebooks: Iterable[Path], out: Path, *, execute: bool = True, timeout: int = 600) -> Path:
    """Write ``out/<name>.html`` for each notebook and ``out/index.html`` linking them; returns the index.

    ``execute=False`` takes the notebooks as they were saved (already run, outputs and widget state included).
    A notebook whose run raises, or which was saved with an error output, is an error naming it and the cell.
    """
    notebooks = [Path(path) for path in notebooks]
    if not notebooks:
        raise ValueError("no notebooks to build a site from: give one or more .ipynb files")
    for path in notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            raise ValueError(f"cannot build a page from {path}: not an .ipynb file")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        if execute:
            run_notebook(nb, path.parent, timeout)
        check_no_errors(nb, path)
        freeze_widgets(nb)
        (out / f"{path.stem}.html").write_text(notebook_html(nb), encoding="utf-8")
        entries.append((path.stem, title_of(nb, path.stem)))
    index = out / "index.html"
    index.write_text(index_html(entries), encoding="utf-8")
    return index


def run_notebook(nb, folder: Path, timeout: int) -> None:
    """Execute ``nb`` in place with a fresh kernel started in ``folder``, keeping the widget state."""
    from nbclient import NotebookClient

    resources = {"metadata": {"path": str(folder)}}
    NotebookClient(nb, timeout=timeout, resources=resources, store_widget_state=True).execute()


def check_no_errors(nb, path: Path) -> None:
    """Refuse a notebook that holds an error output: the page would show a traceback as if it were the lesson."""
    for number, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                raise ValueError(f"{path.name}: cell {number} ended in {output.get('ename')}: {output.get('evalue')}")


def title_of(nb, default: str) -> str:
    """The notebook's first Markdown heading, else ``default``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return default


def freeze_widgets(nb) -> None:
    """Replace every widget output of ``nb`` by static HTML drawn from the notebook's saved widget state."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is not None:
                still = widget_html(view["model_id"], state)
                output["data"] = {"text/html": f"<div class='wb-still'>{still}</div>"}
    nb.metadata.pop("widgets", None)


def widget_html(model_id: str, state: dict) -> str:
    """A still of the widget ``model_id`` and its children, as HTML."""
    widget = state.get(model_id)
    if widget is None:
        return "<em>(a live widget: run the notebook to use it)</em>"
    name, values = widget["model_name"], widget["state"]
    if name in BOXES:
        children = "".join(widget_html(ref.removeprefix("IPY_MODEL_"), state) for ref in values.get("children", []))
        return f"<div style='display:flex;flex-direction:{BOXES[name]};flex-wrap:wrap;gap:4px'>{children}</div>"
    if name == "TabModel":
        selected = values.get("selected_index") or 0
        titles = values.get("titles") or []
        children = values.get("children", [])
        if not children:
            return ""
        title = html.escape(titles[selected]) if selected < len(titles) else ""
        return f"<div><strong>{title}</strong>{widget_html(children[selected].removeprefix('IPY_MODEL_'), state)}</div>"
    if name == "ImageModel":
        return image_html(widget, state)
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{values.get('value', '')}</div>"
    if name == "LabelModel":
        return f"<span>{html.escape(values.get('value', ''))}</span>"
    if name == "OutputModel":
        return "".join(output_html(output) for output in values.get("outputs", []))
    if name in SLIDERS or name in CHOOSERS or name in ("CheckboxModel", "ButtonModel"):
        return control_html(name, values)
    return f"<em>({html.escape(name.removesuffix('Model'))}: run the notebook to use it)</em>"


def image_html(widget: dict, state: dict) -> str:
    """An Image widget's picture as an inline ``<img>``, at the width its layout gave it."""
    data = next((b["data"] for b in widget.get("buffers", []) if b.get("path") == ["value"]), None)
    if data is None:
        return ""
    values = widget["state"]
    layout = state.get(str(values.get("layout", "")).removeprefix("IPY_MODEL_"), {}).get("state", {})
    width = layout.get("width") or ""
    style = f"max-width:100%;width:{html.escape(width)}" if width else "max-width:100%"
    return f"<img src='data:image/{values.get('format', 'png')};base64,{data}' style='{style}' alt='figure'>"


def control_html(name: str, values: dict) -> str:
    """A control as text: its description and the value it was left at."""
    description = html.escape(values.get("description", ""))
    if "_options_labels" in values and values.get("index") is not None:
        shown = values["_options_labels"][values["index"]]
    elif name == "ButtonModel":
        shown = f"[{values.get('description', '')}]"
        description = ""
    else:
        shown = values.get("value", "")
    return (
        "<span style='border:1px solid #ccc;border-radius:3px;padding:1px 6px;margin:2px;font-size:90%'>"
        f"{description} <strong>{html.escape(str(shown))}</strong></span>"
    )


def output_html(output: dict) -> str:
    """One output of an Output widget: an image, HTML, or text."""
    data = output.get("data", {})
    if "image/png" in data:
        return f"<img src='data:image/png;base64,{data['image/png']}' style='max-width:100%' alt='figure'>"
    if "text/html" in data:
        return str(data["text/html"]) if isinstance(data["text/html"], str) else "".join(data["text/html"])
    text = output.get("text") or data.get("text/plain", "")
    return f"<pre>{html.escape(text if isinstance(text, str) else ''.join(text))}</pre>"


def notebook_html(nb) -> str:
    """The notebook as one self-contained page (JupyterLab's look, figures inline)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return body


def index_html(entries: list[tuple[str, str]]) -> str:
    """A contents page linking each notebook's page by its title."""
    items = "\n".join(f"<li><a href='{html.escape(s)}.html'>{html.escape(title)}</a></li>" for s, title in entries)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>workbench notebooks</title>"
        "<style>body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.5}</style></head>"
        f"<body><h1>workbench: the notebooks</h1><p>Executed, with their figures; widgets are shown as they were "
        f"left at the end of the run.</p><ol>\n{items}\n</ol></body></html>\n"
    )


def default_notebooks(folder: Path) -> list[Path]:
    """The numbered notebooks of ``folder`` in order."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
