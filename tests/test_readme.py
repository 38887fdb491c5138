"""The README's quick start runs as written and prints the numbers its comments show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Quick start") :]
    return (
        section[section.index("```python") + len("```python") : section.index("```", section.index("```python") + 9)]
        .strip()
        .splitlines()
    )


def test_quick_start_runs_and_its_numbers_hold():
    namespace: dict = {}
    checked = 0
    for line in quick_start():
        code, _, comment = line.partition("#")
        if not code.strip():
            continue
        claimed = re.match(r"\s*-> ([0-9.]+)", comment)
        if claimed:
            value = eval(code, namespace)  # an expression line whose value the comment gives
            assert value == pytest.approx(float(claimed[1]), abs=0.0051), line
            checked += 1
        else:
            exec(code, namespace)
    assert checked >= 3
