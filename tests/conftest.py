"""Shared fixtures for the workbench test suite.

Small models train faster on one thread, and one thread makes CPU training bit-for-bit
reproducible, so the whole session runs single-threaded.
"""

from __future__ import annotations

import copy
import fnmatch
import os

import binder_env
import pytest
import torch
from helpers import retry_load
from hypothesis import HealthCheck, settings

import workbench as wb

torch.set_num_threads(1)

settings.register_profile(
    "workbench",
    deadline=None,  # the first call of anything torch-related is slow; that is not a bug
    max_examples=20,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,  # a failure prints how to reproduce it
)
settings.register_profile("thorough", parent=settings.get_profile("workbench"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "workbench"))  # HYPOTHESIS_PROFILE=thorough for a long hunt


@pytest.fixture(scope="session")
def digits() -> wb.DatasetSplits:
    return wb.load_dataset("digits")


@pytest.fixture(scope="session")
def moons() -> wb.DatasetSplits:
    return wb.load_dataset("moons")


@pytest.fixture(scope="session")
def _shipped_cache() -> dict:
    return {}


@pytest.fixture
def shipped(_shipped_cache):
    """``shipped(name)``: a fresh copy of the shipped model ``name`` (tests may modify it)."""

    def get(name: str) -> torch.nn.Module:
        if name not in _shipped_cache:
            _shipped_cache[name] = retry_load(lambda: wb.pretrained(name))
        return copy.deepcopy(_shipped_cache[name])

    return get


# Scopes that run for minutes, in the order the workers start them (before all others, which go by their number of
# tests), so that the workers end on short scopes at about the same time instead of one running a long one alone.
# The Binder test comes after the other long ones: its environment builds in the background meanwhile.
LONG_SCOPES = (
    "tests/browser",
    "notebooks/*.ipynb",
    "tests/test_golden_masks.py",
    "tests/test_study.py",
    "tests/test_binder.py",
)


def pytest_xdist_make_scheduler(config, log):
    """With pytest-xdist (``-n auto``): every test module and every notebook (its cells share one kernel) runs in one
    worker, and all the browser tests, which share one JupyterLab server and its notebook runs, in one worker;
    ``LONG_SCOPES`` first."""
    from xdist.scheduler import LoadScopeScheduling

    def rank(scope: str) -> int:
        return next((i for i, pattern in enumerate(LONG_SCOPES) if fnmatch.fnmatch(scope, pattern)), len(LONG_SCOPES))

    class OneBrowserWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/browser" if nodeid.startswith("tests/browser/") else super()._split_scope(nodeid)

        def _assign_work_unit(self, node) -> None:
            self.workqueue.move_to_end(min(self.workqueue, key=rank), last=False)  # min: the first of its rank
            super()._assign_work_unit(node)

    return OneBrowserWorker(config, log)


# The Binder environment (tests/binder_env.py) builds in the background from the moment its test is collected.
def pytest_configure(config):
    binder_env.configure(config)


def pytest_configure_node(node):
    binder_env.configure_node(node)


def pytest_collection_finish(session):
    if not hasattr(session.config, "workerinput"):  # under xdist the controller starts it (below)
        binder_env.start_if_collected(session.config, [item.nodeid for item in session.items])


def pytest_xdist_node_collection_finished(node, ids):
    binder_env.start_if_collected(node.config, ids)


def pytest_unconfigure(config):
    binder_env.unconfigure(config)
