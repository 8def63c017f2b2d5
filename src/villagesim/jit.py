"""Compiled kernels for the hot loops of a step, with numba.

At small sizes (a township of 10^4 persons) a step of numpy calls is dominated by the cost
of each call, not by the work on each row: a process of a few dozen array operations over a
few thousand rows spends most of its time starting them. A kernel compiled with
:func:`njit` does the same arithmetic in one pass over the rows. Kernels follow these rules,
so that a compiled process gives the same numbers, to the bit, as the array code it replaces:

* every random number is still drawn by numpy from the run's stream, outside the kernel, in
  the same amount and order (one draw per person row per stream, :mod:`villagesim.rng`);
  kernels only read the draws;
* arithmetic keeps numpy's dtypes: a ``float32`` column combined with a scenario parameter
  (a Python float, which numpy treats as "weak") stays ``float32``, so the parameter is cast
  with ``np.float32(x)`` before it is used; sums keep the order numpy's code used;
* transcendental functions (``exp``, ``expm1``, ``**``) stay numpy calls on whole arrays:
  numpy's vectorised ``exp`` and the C library's need not agree in the last bit.

Kernels are compiled on first use and cached on disk beside the module (numba's
``cache=True``), so only the first run on a machine pays the compilation (seconds). The
cache of a kernel is renewed when its own source file changes, not when another file does:
so a kernel calls only kernels of its own module.

Each compiled path has its plain numpy formula beside it in its module, registered with
:func:`formula_of`; :func:`formulas` lists the pairs, and the identity tests
(``tests/processes/test_kernels.py``) compare every pair to the bit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numba

__all__ = ["FORMULA_MODULES", "Formula", "formula_of", "formulas", "njit"]


def njit(fn=None, **options):
    """``numba.njit`` with villagesim's settings: cached, no fast-math (IEEE arithmetic as in
    numpy), numpy's error model (division by zero gives inf/nan, no exception), bounds
    unchecked."""
    settings = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy", "boundscheck": False}
    settings.update(options)
    if fn is None:
        return numba.njit(**settings)
    return numba.njit(**settings)(fn)


@dataclass(frozen=True)
class Formula:
    """A compiled path and the plain numpy formula it must reproduce to the bit.

    ``module`` and ``kernel`` name the compiled path (a module's function, looked up when
    asked for, so a test that wraps it sees the wrapper); ``plain`` is the formula, written
    next to the kernel in the same module; ``check`` names how the two are compared (the
    identity tests have one check per name, run over every pair of that name).
    """

    module: str
    kernel: str
    plain: Callable
    check: str

    @property
    def name(self) -> str:
        return f"{self.module.rsplit('.', 1)[-1]}.{self.kernel}"

    @property
    def compiled(self) -> Callable:
        return getattr(importlib.import_module(self.module), self.kernel)


_FORMULAS: dict[str, Formula] = {}

FORMULA_MODULES = ("villagesim.processes", "villagesim.outputs.sums")
"""The packages and modules whose imports register every kernel's formula."""


def formula_of(kernel: str, check: str) -> Callable[[Callable], Callable]:
    """Registers the decorated plain function as the formula of ``kernel`` (a function of the
    same module) and returns it unchanged."""

    def register(plain: Callable) -> Callable:
        pair = Formula(plain.__module__, kernel, plain, check)
        _FORMULAS[pair.name] = pair
        return plain

    return register


def formulas(check: str | None = None) -> list[Formula]:
    """Every registered (compiled path, plain formula) pair, or those compared by ``check``, in
    the order their modules were imported."""
    for module in FORMULA_MODULES:
        importlib.import_module(module)
    return [pair for pair in _FORMULAS.values() if check is None or pair.check == check]
