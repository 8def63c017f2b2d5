"""Seeded, synchronised random streams.

One :class:`numpy.random.SeedSequence` per run (root seed + replicate). Every process draws
from its own stream, derived from the run's sequence by a *stable key*: the process's name
and the step number. So

* the same scenario, seed and replicate give the same numbers, serial or on a cluster;
* switching a lever on does not shift the random numbers of any other process, nor of
  later steps of the same process: baseline and intervention arms share common random
  numbers (CRN), which makes paired comparisons sharp.

Person-level decisions draw one number per row of the person table (not per eligible
person), so a villager keeps "their" random number whatever the lever does to others.
"""

from __future__ import annotations

import zlib

import numpy as np

SeedLike = int | np.integer
"""Anything accepted as a root seed."""


def stream_key(name: str) -> int:
    """A stable 32-bit integer for a stream name (CRC-32: same on every machine)."""
    return zlib.crc32(name.encode("utf-8"))


class Streams:
    """The random streams of one run.

    Args:
        seed: the root seed of the scenario (``run.seed``).
        replicate: replicate number; replicate ``r`` of any two arms shares its streams.

    Example:
        >>> streams = Streams(42, replicate=0)
        >>> rng = streams.for_step("demography", 3)
        >>> float(rng.random()) == float(Streams(42, 0).for_step("demography", 3).random())
        True
    """

    def __init__(self, seed: SeedLike, replicate: int = 0) -> None:
        self.seed = int(seed)
        self.replicate = int(replicate)
        self.root = np.random.SeedSequence(self.seed, spawn_key=(self.replicate,))

    def _sequence(self, *key: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.seed, spawn_key=(self.replicate, *key))

    def named(self, name: str) -> np.random.Generator:
        """A stream for a one-off use (e.g. building the population)."""
        return np.random.Generator(np.random.PCG64(self._sequence(stream_key(name))))

    def for_step(self, name: str, step: int) -> np.random.Generator:
        """The stream of process ``name`` at step ``step``."""
        return np.random.Generator(np.random.PCG64(self._sequence(stream_key(name), int(step))))

    def lazy_for_step(self, name: str, step: int) -> LazyGenerator:
        """The stream of process ``name`` at step ``step``, built only if the process draws.

        The same numbers as :meth:`for_step`; a process that draws nothing this step (a
        deterministic one, or a mechanism that is off) costs no stream construction.
        """
        return LazyGenerator(self, name, int(step))

    def mesa_rng(self) -> np.random.Generator:
        """The generator handed to ``mesa.Model(rng=...)`` (for Mesa's own uses)."""
        return self.named("mesa")


class LazyGenerator:
    """Stands in for ``Streams.for_step(name, step)``; the generator is made on first use.

    Every attribute (``random``, ``integers``, ``bit_generator``, ...) is that of the real
    :class:`numpy.random.Generator`, so a process cannot tell the difference.
    """

    __slots__ = ("_streams", "_name", "_step", "_generator")

    def __init__(self, streams: Streams, name: str, step: int) -> None:
        self._streams = streams
        self._name = name
        self._step = step
        self._generator: np.random.Generator | None = None

    @property
    def generator(self) -> np.random.Generator:
        """The stream itself (built now if it was not yet)."""
        if self._generator is None:
            self._generator = self._streams.for_step(self._name, self._step)
        return self._generator

    def __getattr__(self, attr: str):
        return getattr(self.generator, attr)


def substream(rng: np.random.Generator, key: int) -> np.random.Generator:
    """An independent child stream of ``rng`` keyed by ``key``, without consuming draws of ``rng``.

    A process uses it for an optional mechanism (e.g. the time bank inside matching) so that
    switching the mechanism on does not shift the process's other draws.
    """
    seq = rng.bit_generator.seed_seq
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seq.entropy, spawn_key=(*seq.spawn_key, 1_000_003, key))))
