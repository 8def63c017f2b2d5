"""The public API of ``import villagesim``: each name resolves, is documented, and loads lazily."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import villagesim


@pytest.mark.parametrize("name", villagesim.__all__)
def test_each_public_name_resolves_and_is_documented(name):
    obj = getattr(villagesim, name)
    if name == "__version__":
        assert isinstance(obj, str) and obj
        return
    assert inspect.getdoc(obj), f"villagesim.{name} has no docstring"
    assert obj.__doc__ is not None and obj.__doc__.strip(), f"villagesim.{name} has no docstring of its own"


def test_public_names_are_the_defining_objects():
    from villagesim.config.loading import load_scenario
    from villagesim.config.schema import Scenario
    from villagesim.experiments.compare import compare
    from villagesim.model import VillageModel
    from villagesim.runs.runner import run_scenario
    from villagesim.version import __version__

    assert villagesim.VillageModel is VillageModel
    assert villagesim.Scenario is Scenario
    assert villagesim.load_scenario is load_scenario
    assert villagesim.run_scenario is run_scenario
    assert villagesim.compare is compare
    assert villagesim.__version__ == __version__


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        villagesim.no_such_name  # noqa: B018


def test_package_and_its_docstring():
    assert inspect.getdoc(villagesim)
    assert set(villagesim.__all__) <= set(dir(villagesim))


def test_import_is_cheap():
    """``import villagesim`` loads neither Mesa nor numba nor pydantic (Mesa alone takes seconds)."""
    code = (
        "import sys, villagesim; print(sorted({m.split('.')[0] for m in sys.modules} & {'mesa', 'numba', 'pydantic', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
