"""nbval runs the notebooks with their exercises solved, in strict mode.

Each notebook's exercise cells are replaced by the solutions in ``solutions/<notebook>.py``
(``workbench.exercises.write_solved``); the copy goes to ``build/solved-notebooks/`` (outside the test paths,
so it is not collected twice), and nbval's collector for the notebook reads its cells from there, keeping the
notebook's own path and test ids. Its kernel runs in the notebook's folder with ``WORKBENCH_EXERCISES=strict``,
so a check cell whose solution does not pass fails the notebook.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from nbval.plugin import IPyNbFile

from workbench.exercises import STRICT_VARIABLE, write_solved

collect_ignore_glob = ["solutions/*"]  # solution cells, not modules: they run inside the notebooks
SOLVED_DIR = Path(__file__).resolve().parents[1] / "build" / "solved-notebooks"


class SolvedNotebook(IPyNbFile):
    """nbval's notebook collector over the solved copy, its kernel started with the checker in strict mode."""

    def collect(self):
        original, self.path = self.path, write_solved(self.path, SOLVED_DIR)  # nbval reads the cells from self.path
        try:
            return list(super().collect())
        finally:
            self.path = original

    def setup(self):
        previous = os.environ.get(STRICT_VARIABLE)
        os.environ[STRICT_VARIABLE] = "strict"  # the kernel inherits the environment when it starts
        try:
            super().setup()
        finally:
            if previous is None:
                del os.environ[STRICT_VARIABLE]
            else:
                os.environ[STRICT_VARIABLE] = previous


@pytest.hookimpl(hookwrapper=True)
def pytest_collect_file(file_path, parent):
    outcome = yield
    swapped = []
    for collector in outcome.get_result() or []:
        if isinstance(collector, IPyNbFile) and not isinstance(collector, SolvedNotebook):
            collector = SolvedNotebook.from_parent(parent, path=file_path)
        swapped.append(collector)
    outcome.force_result(swapped)
