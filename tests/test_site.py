"""The HTML site: executed notebooks with their figures, and widgets frozen into stills of how they were left."""

from __future__ import annotations

import nbformat
import pytest

from workbench.cli import main
from workbench.site import build_site

WIDGET_CELL = """\
import io
import ipywidgets as widgets
from matplotlib.figure import Figure
from workbench.widgets.sliders import fraction_slider

figure = Figure(figsize=(2, 1))
figure.add_subplot().plot([0, 1], [1, 0])
png = io.BytesIO()
figure.savefig(png, format="png")
slider = fraction_slider("sparsity", 0.37)
status = widgets.HTML("accuracy <b>91.2%</b>")
widgets.VBox([widgets.HBox([slider, status]), widgets.Image(value=png.getvalue(), format="png")])
"""


def write(folder, name, *sources, markdown="# A page"):
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell(markdown), *(nbformat.v4.new_code_cell(s) for s in sources)]
    )
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_a_page_shows_the_figures_and_a_still_of_each_widget(tmp_path):
    path = write(tmp_path, "01_widgets.ipynb", "print(6 * 7)", WIDGET_CELL, markdown="# Widgets, frozen")
    index = build_site([path], tmp_path / "site")
    page = (tmp_path / "site" / "01_widgets.html").read_text()
    assert "42" in page
    assert 'src="data:image/png;base64,iVBOR' in page  # the Image widget's PNG, inline
    assert "sparsity <strong>37%</strong>" in page
    assert "accuracy <b>91.2%</b>" in page
    assert "application/vnd.jupyter.widget-view+json" not in page  # no live widget that needs a kernel
    assert "<a href='01_widgets.html'>Widgets, frozen</a>" in index.read_text()


def test_a_notebook_that_fails_is_an_error_naming_the_cell(tmp_path):
    path = write(tmp_path, "02_broken.ipynb", "x = 1", "raise RuntimeError('no such layer')")
    with pytest.raises(Exception, match="no such layer"):
        build_site([path], tmp_path / "site")
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("error", ename="RuntimeError", evalue="no such layer", traceback=[])]
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match=r"02_broken.ipynb: cell 2 ended in RuntimeError: no such layer"):
        build_site([path], tmp_path / "site", execute=False)


def test_bad_input_is_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="no notebooks"):
        build_site([], tmp_path / "site")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"notes.txt: not an .ipynb file"):
        build_site([tmp_path / "notes.txt"], tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_the_command_builds_a_folder_of_saved_notebooks_and_refuses_an_empty_one(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Saved")])
    code = nbformat.v4.new_code_cell("6 * 7")
    code.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "42"}, execution_count=1)]
    nb.cells.append(code)
    nbformat.write(nb, tmp_path / "03_saved.ipynb")
    nbformat.write(nb, tmp_path / "scratch.ipynb")  # not a numbered lesson: left out of a folder's site
    assert main(["site", str(tmp_path), "--out", str(tmp_path / "site"), "--no-execute"]) == 0
    assert capsys.readouterr().out == f"workbench site: wrote {tmp_path / 'site' / 'index.html'}\n"
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["03_saved.html", "index.html"]
    (tmp_path / "empty").mkdir()
    assert main(["site", str(tmp_path / "empty"), "--out", str(tmp_path / "site2")]) == 2
    refusal = f"workbench site: no numbered notebooks (NN_name.ipynb) in folder {tmp_path / 'empty'}\n"
    assert capsys.readouterr().err == refusal
