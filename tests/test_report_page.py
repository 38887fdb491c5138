"""`workbench report`: one self-contained HTML page whose numbers are the library's, for a shipped model or a
sparse file; bad input is one line and no file."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from html.parser import HTMLParser

import pytest
import torch

import workbench as wb
from workbench import report_page as report_page_module
from workbench.cli import build_parser, main
from workbench.masks import is_masked
from workbench.measure import parameter_counts
from workbench.report_page import SECTIONS, report_page

FAST = {"sensitivity_sparsities": (0.0, 0.9), "tradeoff_sparsities": (0.0, 0.9), "min_run_time": 0.01}


class PageParser(HTMLParser):
    """Every section's tables (rows of cell texts), every <img> src, and every tag name seen."""

    def __init__(self, page: str):
        super().__init__()
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.images: list[str] = []
        self.tags: set[str] = set()
        self.section = "header"
        self.cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "section":
            self.section = attrs["id"]
        elif tag == "table":
            self.tables.setdefault(self.section, []).append([])
        elif tag == "tr":
            self.tables[self.section][-1].append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[self.section][-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


@pytest.fixture(scope="module")
def cli_page(tmp_path_factory) -> tuple[str, str]:
    """The page ``workbench report mlp`` writes with a small trade-off grid, and what the command printed."""
    out = tmp_path_factory.mktemp("report") / "mlp.html"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["report", "mlp", "--sparsity", "0.7", "--tradeoff-sparsities", "0,0.9", "--out", str(out)]) == 0
    return out.read_text(encoding="utf-8"), printed.getvalue()


def test_cli_writes_a_self_contained_page_with_every_section(cli_page):
    page, printed = cli_page
    assert re.fullmatch(r"workbench report: wrote \S+mlp\.html \(\d+ KB\)\n", printed)
    parsed = PageParser(page)
    assert set(SECTIONS) <= set(parsed.tables) | {"masks", "sensitivity", "tradeoff"}
    assert all(f'<section id="{key}">' in page for key in SECTIONS)
    assert not {"script", "link", "iframe", "object", "embed"} & parsed.tags
    assert 'src="http' not in page and "url(" not in page and "@import" not in page
    assert len(parsed.images) == 4  # masks, sensitivity, storage, trade-off
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
    assert "not fine-tuned" in page


def test_the_page_numbers_are_the_librarys(cli_page, digits):
    page, _ = cli_page
    model = wb.pretrained("mlp")
    dense = wb.evaluate(model, digits.test)
    wb.prune(model, sparsity=0.7)
    report = wb.sparsity_report(model)
    expected = [
        [l.name, "×".join(map(str, l.shape)), f"{l.kept:,}", f"{l.total:,}", f"{l.sparsity:.2%}"] for l in report.layers
    ]
    rows = PageParser(page).tables["layers"][0]
    assert rows[0] == ["layer", "shape", "kept", "total", "sparsity"]
    assert rows[1:-1] == expected
    assert rows[-1][2:] == [f"{report.total - report.pruned:,}", f"{report.total:,}", f"{report.sparsity:.2%}"]
    assert f"{dense:.2%}</strong> dense → <strong>{wb.evaluate(model, digits.test):.2%}</strong> pruned" in page
    total, nonzero = parameter_counts(model)
    assert f"{total:,} in all, {nonzero:,} nonzero" in page


def test_the_modes_table_shows_every_mode_and_why_one_cannot_run(cli_page):
    rows = PageParser(cli_page[0]).tables["modes"][0]
    modes = {row[0]: row for row in rows[1:]}
    assert set(modes) == {"dense", "masked", "csr", "bsr", "semi_structured", "shrunk"}
    assert "—" not in modes["dense"] and modes["dense"][-3] == "0.0e+00"
    if not torch.cuda.is_available():
        assert set(modes["semi_structured"][1:-1]) == {"—"} and "CUDA" in modes["semi_structured"][-1]


def test_the_reproduce_command_parses_to_the_same_settings(cli_page):
    command = re.search(r"<pre>(workbench report .*?)</pre>", cli_page[0])[1]
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert (args.model, args.sparsity, args.pattern, args.criterion, args.scope) == (
        "mlp", 0.7, "unstructured", "magnitude", "local",
    )  # fmt: skip
    assert args.tradeoff_sparsities == (0.0, 0.9) and args.fine_tune_epochs == 0


def test_a_sparse_file_is_reported_as_saved(tmp_path, digits):
    model = wb.pretrained("mlp")
    wb.prune(model, sparsity=0.8, pattern="neuron")
    path = tmp_path / "mine.sparse"
    wb.save_sparse(model, path)
    page = report_page(str(path), **FAST)
    saved = wb.sparsity_report(wb.load_sparse(path))
    rows = PageParser(page).tables["layers"][0]
    assert [row[2] for row in rows[1:-1]] == [f"{layer.kept:,}" for layer in saved.layers]
    assert f"{wb.evaluate(model, digits.test):.2%}</strong> as given" in page
    assert "pruned</strong>" not in page and "→" not in page.split('class="accuracy"')[1].split("</p>")[0]
    assert "digits" in page and "file mine.sparse, as saved" in page
    assert f"workbench report {path}" in page  # reproducible: the file as given, no --sparsity
    assert "--sparsity" not in re.search(r"<pre>(.*?)</pre>", page)[1]


def test_a_module_with_its_data_is_copied_and_an_n_m_pattern_skips_the_sensitivity_scan(digits):
    model = wb.pretrained("mlp")
    with pytest.raises(ValueError, match="pass data="):
        report_page(model)
    page = report_page(model, digits, pattern="2:4", sparsity=0.5, **FAST)
    assert not is_masked(model)  # the report prunes a copy
    assert "a model handed over in Python" in page and "then magnitude × 2:4 × local to sparsity 0.5" in page
    section = page.split('<section id="sensitivity">')[1].split("</section>")[0]
    assert "Skipped: 2:4 fixes every layer" in section and "<img" not in section


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope"], "unknown model 'nope'"),
        (["mlp", "--sparsity", "1.5"], "sparsity must be in [0, 1)"),
        (["mlp", "--pattern", "3:2"], "pattern"),
        (["mlp", "--fine-tune-epochs", "-1"], "fine-tuning epochs"),
        (["mlp", "--threads", "-2"], "threads"),
        (["cnn", "--pattern", "2:4"], "exclude it"),
        (["BAD_FILE"], "BAD_FILE"),
        (["mlp", "--out", "FOLDER"], "it is a folder"),
        (["mlp", "--out", "MISSING/report.html"], "does not exist"),
    ],
)
def test_bad_input_exits_2_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "BAD_FILE").write_bytes(b"not a sparse file at all")
    (tmp_path / "FOLDER").mkdir()
    before = set(tmp_path.iterdir())
    assert main(["report", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("workbench report: ")
    assert message in err
    assert set(tmp_path.iterdir()) == before  # no report, no half-written temporary file


def test_a_failure_midway_leaves_no_file(tmp_path, monkeypatch, capsys):
    def broken(*args):
        raise ValueError("a section failed")

    monkeypatch.setattr(report_page_module, "masks_section", broken)
    assert main(["report", "mlp", "--out", str(tmp_path / "report.html")]) == 2
    assert capsys.readouterr().err == "workbench report: a section failed\n"
    assert list(tmp_path.iterdir()) == []
