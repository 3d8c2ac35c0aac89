"""Every test here runs the real embedded narrator model: marked `model`, so
`pytest -m "not model"` gives the quick suite."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/model/" in str(item.path):
            item.add_marker(pytest.mark.model)
