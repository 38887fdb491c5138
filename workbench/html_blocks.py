"""HTML building blocks of a self-contained page: figures as inline PNGs, escaped tables, one inline style sheet.

Nothing a page built from them shows is fetched: no scripts, no links, no external images.

Example:
    >>> html_table(["layer", "kept"], [["fc <1>", "1,024"]]).partition("<tbody>")[2]
    '<tr><td class="left">fc &lt;1&gt;</td><td>1,024</td></tr></tbody></table></div>'
    >>> formatted(float("nan"), ".2f×"), formatted(1.5, ".2f×")
    ('—', '1.50×')
"""

from __future__ import annotations

import base64
import html
import io

DPI = 100
STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; color: #222; background: #fafaf7; max-width: 1040px; margin: 0 auto;
       padding: 24px 28px 48px; }
h1 { font-size: 1.7em; margin: 0 0 4px; } h2 { font-size: 1.3em; margin: 0 0 6px; color: #1f4e79; }
section, header { background: #fff; border: 1px solid #e2e0d8; border-radius: 8px; padding: 18px 22px; margin: 18px 0; }
p.lead { color: #555; margin: 0 0 12px; } p.skip { font-style: italic; color: #8a4b0f; }
.accuracy { font-size: 1.25em; margin: 8px 0 14px; } .accuracy strong { color: #1f4e79; }
img { display: block; max-width: 100%; height: auto; margin: 10px auto; }
.wide { overflow-x: auto; } table { border-collapse: collapse; margin: 8px 0; font-size: 0.9em; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eceae3; text-align: right; vertical-align: top; }
th { background: #f1efe8; font-weight: 600; } tr:nth-child(even) td { background: #fbfaf6; }
.left { text-align: left; white-space: nowrap; } .note { text-align: left; }
td.note { color: #555; font-size: 0.92em; min-width: 11em; }
table.facts th { text-align: left; background: none; width: 8em; color: #555; font-weight: 500; }
table.facts td { text-align: left; } code, pre { font: 0.9em ui-monospace, Menlo, Consolas, monospace; }
pre { background: #f1efe8; padding: 8px 12px; border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
footer { color: #777; font-size: 0.85em; text-align: center; }
"""


def figure_img(figure, alt: str) -> str:
    """A matplotlib Figure as an inline PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def _cell(tag: str, css: str, value) -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<{tag}{attribute}>{html.escape(str(value))}</{tag}>"


def html_table(columns: list[str], rows: list[list], left: int = 1) -> str:
    """An HTML table of escaped text; the first ``left`` columns align left, a column named "note" is set as prose."""
    classes = ["left" if i < left else "note" if name == "note" else "" for i, name in enumerate(columns)]
    head = "".join(_cell("th", css, name) for css, name in zip(classes, columns))
    body = "".join(
        "<tr>" + "".join(_cell("td", css, value) for css, value in zip(classes, row)) + "</tr>" for row in rows
    )
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def formatted(value, form: str) -> str:
    """``value`` formatted (a trailing "×" kept), or "—" where it was not measured (NaN)."""
    suffix = "×" if form.endswith("×") else ""
    return "—" if value != value else format(value, form.removesuffix("×")) + suffix


def html_page(title: str, body: str) -> str:
    """A whole page: ``title`` (escaped here), the style sheet inline, and ``body`` (HTML, escaped by its maker)."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body>{body}</body></html>\n"
    )
