"""Exercise cells of notebooks, their solutions, and solved copies (what the tests run).

An exercise cell is a code cell whose metadata has ``"tags": ["exercise"]`` and ``"exercise": name``. A
solutions file is Python with one section per exercise, each opened by a line ``# %% exercise: name``.
``solve`` replaces the source of every exercise cell by its solution and leaves every other cell alone.

Example:
    >>> solutions = parse_solutions("# %% exercise: answer\\nmy_answer = 42\\n")
    >>> notebook = {"cells": [{"cell_type": "code", "source": "my_answer = None",
    ...                        "metadata": {"tags": ["exercise"], "exercise": "answer"}}]}
    >>> solve(notebook, solutions)["cells"][0]["source"]
    'my_answer = 42'
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from pathlib import Path

TAG = "exercise"
SECTION = re.compile(r"^# %% exercise: (\S+)[ \t]*$", re.MULTILINE)


def exercise_cells(notebook: dict) -> list[tuple[int, str]]:
    """(cell index, exercise name) of every exercise cell of a notebook (as loaded from JSON)."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        metadata = cell.get("metadata", {})
        if TAG in metadata.get("tags", []):
            if cell["cell_type"] != "code" or not isinstance(metadata.get("exercise"), str):
                raise ValueError(f"cell {index} is tagged {TAG!r} but is not a code cell with an 'exercise' name")
            found.append((index, metadata["exercise"]))
    return found


def parse_solutions(text: str) -> dict[str, str]:
    """{exercise name: solution source} from a solutions file's text (what comes before the first section, such
    as a docstring, is not part of any solution)."""
    parts = SECTION.split(text)
    solutions = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        if name in solutions:
            raise ValueError(f"exercise {name!r} has two solutions")
        solutions[name] = body.strip("\n")
    return solutions


def solve(notebook: dict, solutions: dict[str, str]) -> dict:
    """A copy of ``notebook`` with every exercise cell's source replaced by its solution (outputs cleared)."""
    solved = copy.deepcopy(notebook)
    for index, name in exercise_cells(notebook):
        if name not in solutions:
            raise ValueError(f"no solution for exercise {name!r} (cell {index})")
        cell = solved["cells"][index]
        cell["source"], cell["outputs"], cell["execution_count"] = solutions[name], [], None
    return solved


def solutions_path(notebook_path: Path) -> Path:
    """Where the solutions of a notebook live: ``solutions/<notebook stem>.py`` next to it."""
    return notebook_path.parent / "solutions" / f"{notebook_path.stem}.py"


def write_solved(notebook_path: str | Path, out_dir: str | Path) -> Path:
    """Write the solved copy of a notebook into ``out_dir`` (same file name); return its path."""
    notebook_path = Path(notebook_path)
    notebook = json.loads(notebook_path.read_text())
    source = solutions_path(notebook_path)
    solutions = parse_solutions(source.read_text()) if source.exists() else {}
    out = Path(out_dir) / notebook_path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(solve(notebook, solutions), indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".tmp", delete=False) as partial:
        partial.write(text)
    os.replace(partial.name, out)  # whole or not at all: parallel test workers write and read the same copy
    return out
