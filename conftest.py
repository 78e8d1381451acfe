"""Shared by tests/ and benchmarks/: every test and benchmark runs on both backends."""

from __future__ import annotations

import os

import pytest

from fastpcap import _backend


@pytest.fixture(scope="session", params=["cython", "python"], autouse=True)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: one session-scoped fixture, parametrised over both twins."""
    name = request.param
    if name not in _backend.IMPLEMENTATIONS:
        if _backend.NO_EXTENSIONS or os.environ.get("FASTPCAP_ALLOW_PURE_INSTALL"):
            pytest.skip("the compiled core is not built (FASTPCAP_NO_EXTENSIONS)")
        pytest.fail("the compiled core is not importable: run `pip install .` to build it")
    previous = _backend.use(name)
    yield name
    _backend.use(previous)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``once`` do not depend on the ``backend`` fixture (they use no backend, or
    compare both themselves): run them under one only.  Hypothesis tests get the ``property``
    marker (``.ci/run`` runs them again at a deeper sweep)."""
    for item in items:
        if getattr(getattr(item, "function", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.property)
    if "cython" not in _backend.IMPLEMENTATIONS:
        return
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        twin = params is not None and params.params.get("backend") == "python"
        (drop if twin and item.get_closest_marker("once") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
