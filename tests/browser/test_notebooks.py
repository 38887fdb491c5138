"""Every notebook, run in JupyterLab in Chromium as a learner runs it: every cell runs, no error output, no browser
console error, figures drawn, tables rendered, widgets not clipped; a screenshot of each is kept."""

from __future__ import annotations

import json
import re

import pytest

from workbench.site import WIDGET_VIEW, build_site, default_notebooks

from .conftest import ARTIFACTS
from .lab_server import REPO

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted(path.name for path in (REPO / "notebooks").glob("*.ipynb"))


def code_cells(ipynb: dict) -> list[dict]:
    return [cell for cell in ipynb["cells"] if cell["cell_type"] == "code" and "".join(cell["source"]).strip()]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_clean_in_the_browser(notebook_run, name):
    run = notebook_run(name)
    code = code_cells(run.ipynb)
    unrun = [i for i, cell in enumerate(code) if cell.get("execution_count") is None]
    assert not unrun, f"Run All left code cells {unrun} of {name} unrun"
    errors = [
        f"{output['ename']}: {output['evalue']}"
        for cell in code
        for output in cell.get("outputs", [])
        if output["output_type"] == "error"
    ]
    assert not errors, f"{name} shows errors: {errors}"
    assert not run.console_errors, f"the browser logged errors while running {name}: {run.console_errors}"
    assert not run.layout["tables"], f"markdown tables of {name} show as text: {run.layout['tables']}"
    assert not run.layout["clipped"], f"widgets of {name} are clipped: {run.layout['clipped']}"
    assert run.screenshot.stat().st_size > 0


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_figures_are_drawn_not_named(notebook_run, name):
    """A cell that returns a Figure shows the figure, not ``<Figure size 550x340 with 1 Axes>``."""
    named = [
        "".join(output["data"]["text/plain"])
        for cell in code_cells(notebook_run(name).ipynb)
        for output in cell.get("outputs", [])
        if set(output.get("data", {})) == {"text/plain"}
        and re.match(r"<(Figure|matplotlib)", "".join(output["data"]["text/plain"]))
    ]
    assert not named, f"{name} shows figures as text: {named}"


def table_rows(markdown: str) -> list[list[int]]:
    """Each markdown table in ``markdown`` as its rows' cell counts (GitHub's rule: an unescaped ``|`` splits a
    cell even inside backticks)."""
    tables, rows = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.strip().startswith("|"):
            rows.append(len(re.split(r"(?<!\\)\|", line.strip().strip("|"))))
        elif rows:
            tables.append(rows)
            rows = []
    return tables


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_markdown_tables_keep_every_cell(name):
    """A table row with more cells than its header loses the extra ones (an unescaped ``|`` in ``|w|``, say)."""
    cells = json.loads((REPO / "notebooks" / name).read_text())["cells"]
    broken = [
        (i, rows)
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "markdown"
        for rows in table_rows("".join(cell["source"]))
        if len(set(rows)) > 1
    ]
    assert not broken, f"markdown cells of {name} with rows of unequal cell counts (cell, counts): {broken}"


def test_the_site_builds_from_the_notebooks_as_run(notebook_run):
    """``workbench site --no-execute`` over the notebooks JupyterLab ran and saved: one page each, figures inline,
    every widget output a still drawn from the saved widget state, never the placeholder for a missing state."""
    runs = [notebook_run(path.name) for path in default_notebooks(REPO / "notebooks")]
    index = build_site([run.saved for run in runs], ARTIFACTS / "site", execute=False)
    for run in runs:
        page = (index.parent / run.saved.with_suffix(".html").name).read_text()
        widgets = [o for c in code_cells(run.ipynb) for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]
        assert "data:image/png;base64" in page, f"{run.name}'s page has no figure"
        assert page.count('class="wb-still"') == len(widgets), f"{run.name}: a widget output is not a still"
        assert "run the notebook to use it" not in page, f"{run.name}: a widget's state was not saved"
