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
"""

from __future__ import annotations

import numba

__all__ = ["njit"]


def njit(fn=None, **options):
    """``numba.njit`` with villagesim's settings: cached, no fast-math (IEEE arithmetic as in
    numpy), numpy's error model (division by zero gives inf/nan, no exception), bounds
    unchecked."""
    settings = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy", "boundscheck": False}
    settings.update(options)
    if fn is None:
        return numba.njit(**settings)
    return numba.njit(**settings)(fn)
