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

A step builds a few streams, so building one is kept cheap: the stream of a key is
``np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))``, with
the seed sequence's hash of the key worked out by a compiled copy of numpy's algorithm
(:func:`_seed_state`) rather than by numpy's Python-level set-up; the numbers are the same.
"""

from __future__ import annotations

import zlib

import numpy as np
from numpy.random.bit_generator import ISpawnableSeedSequence

from villagesim.jit import njit

SeedLike = int | np.integer
"""Anything accepted as a root seed."""


def stream_key(name: str) -> int:
    """A stable 32-bit integer for a stream name (CRC-32: same on every machine)."""
    return zlib.crc32(name.encode("utf-8"))


_MASK32 = np.uint64(0xFFFFFFFF)
_INIT_A = np.uint64(0x43B0D7E5)
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_MULT_L = np.uint64(0xCA01F9DD)
_MIX_MULT_R = np.uint64(0x4973F715)
_XSHIFT = np.uint64(16)
_POOL_SIZE = 4


@njit
def _hashmix(value, hash_const):
    """numpy's ``hashmix`` on 32-bit words held in uint64: (mixed value, next hash constant)."""
    value = (value ^ hash_const) & _MASK32
    hash_const = (hash_const * _MULT_A) & _MASK32
    value = (value * hash_const) & _MASK32
    return value ^ (value >> _XSHIFT), hash_const


@njit
def _mix(x, y):
    """numpy's ``mix`` of two 32-bit words held in uint64."""
    result = ((_MIX_MULT_L * x) - (_MIX_MULT_R * y)) & _MASK32
    return result ^ (result >> _XSHIFT)


@njit
def _seed_state(entropy):
    """``np.random.SeedSequence(...).generate_state(4, np.uint64)`` from the sequence's
    assembled entropy (uint32 words: the entropy's, padded with zeros to the pool size
    when there is a spawn key, then the spawn key's).

    numpy's ``SeedSequence.mix_entropy`` and ``generate_state`` step by step, in 32-bit
    arithmetic (uint64 masked to 32 bits): the pool of 4 words takes the first words (or
    the running hash of 0), every pool word is mixed into every other, further words are
    mixed into each pool word; the 8 output words hash the pool cyclically and are read
    as 4 little-endian uint64.
    """
    pool = np.zeros(_POOL_SIZE, dtype=np.uint64)
    hash_const = _INIT_A
    for i in range(_POOL_SIZE):
        word = np.uint64(entropy[i]) if i < len(entropy) else np.uint64(0)
        pool[i], hash_const = _hashmix(word, hash_const)
    for i_src in range(_POOL_SIZE):
        for i_dst in range(_POOL_SIZE):
            if i_src != i_dst:
                hashed, hash_const = _hashmix(pool[i_src], hash_const)
                pool[i_dst] = _mix(pool[i_dst], hashed)
    for i_src in range(_POOL_SIZE, len(entropy)):
        for i_dst in range(_POOL_SIZE):
            hashed, hash_const = _hashmix(np.uint64(entropy[i_src]), hash_const)
            pool[i_dst] = _mix(pool[i_dst], hashed)
    out = np.empty(2 * _POOL_SIZE, dtype=np.uint32)
    hash_const = _INIT_B
    for i in range(2 * _POOL_SIZE):
        value = (pool[i % _POOL_SIZE] ^ hash_const) & _MASK32
        hash_const = (hash_const * _MULT_B) & _MASK32
        value = (value * hash_const) & _MASK32
        out[i] = np.uint32(value ^ (value >> _XSHIFT))
    return out.view(np.uint64)


def _words(n: int) -> list[int]:
    """A non-negative integer as numpy's seed sequences read it: 32-bit words, lowest first."""
    if n == 0:
        return [0]
    words = []
    while n > 0:
        words.append(n & 0xFFFFFFFF)
        n >>= 32
    return words


class _StreamSeed(ISpawnableSeedSequence):
    """The seed sequence of a stream, its state already worked out.

    Stands in for ``np.random.SeedSequence(entropy, spawn_key=spawn_key)``: ``entropy`` and
    ``spawn_key`` as there; any other use (``spawn``, other state sizes, ``pool``) goes to
    that sequence, made on first need.
    """

    def __init__(self, entropy: int, spawn_key: tuple[int, ...], state: np.ndarray) -> None:
        self.entropy = entropy
        self.spawn_key = spawn_key
        self.pool_size = _POOL_SIZE
        self._state = state
        self._sequence: np.random.SeedSequence | None = None

    @property
    def sequence(self) -> np.random.SeedSequence:
        """The numpy seed sequence this one stands for."""
        if self._sequence is None:
            self._sequence = np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key)
        return self._sequence

    def generate_state(self, n_words: int, dtype=np.uint32) -> np.ndarray:
        if n_words == _POOL_SIZE and np.dtype(dtype) == np.uint64:
            return self._state.copy()
        return self.sequence.generate_state(n_words, dtype)

    def spawn(self, n_children: int) -> list[np.random.SeedSequence]:
        return self.sequence.spawn(n_children)

    def __getattr__(self, attr: str):
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.sequence, attr)


def _assembled(entropy: int, spawn_key: tuple[int, ...]) -> list[int]:
    """A seed sequence's assembled entropy (numpy's ``get_assembled_entropy``): the words of
    ``entropy``, padded with zeros to the pool size when there is a spawn key, then the
    words of each key."""
    words = _words(entropy)
    if spawn_key and len(words) < _POOL_SIZE:
        words += [0] * (_POOL_SIZE - len(words))
    for k in spawn_key:
        words += _words(int(k))
    return words


def generator(entropy: int, spawn_key: tuple[int, ...], assembled: list[int] | None = None) -> np.random.Generator:
    """``np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=spawn_key)))``:
    the same numbers, built at a fraction of the cost.

    Args:
        entropy: the root seed.
        spawn_key: the stream's key.
        assembled: ``_assembled(entropy, spawn_key)`` if already known.
    """
    if not isinstance(entropy, int | np.integer) or entropy < 0 or any(k < 0 for k in spawn_key):
        # not a seed of villagesim's streams: numpy's own set-up (and checks)
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy, spawn_key=spawn_key)))
    if assembled is None:
        assembled = _assembled(int(entropy), spawn_key)
    state = _seed_state(np.array(assembled, dtype=np.uint32))
    return np.random.Generator(np.random.PCG64(_StreamSeed(entropy, tuple(spawn_key), state)))


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
        self._words_of: dict[str, list[int]] = {}

    def _key_words(self, name: str) -> list[int]:
        """Assembled entropy of the streams of ``name`` before the step (worked out once)."""
        words = self._words_of.get(name)
        if words is None:
            words = self._words_of[name] = _assembled(self.seed, (self.replicate, stream_key(name)))
        return words

    def named(self, name: str) -> np.random.Generator:
        """A stream for a one-off use (e.g. building the population)."""
        return generator(self.seed, (self.replicate, stream_key(name)))

    def for_step(self, name: str, step: int) -> np.random.Generator:
        """The stream of process ``name`` at step ``step``."""
        step = int(step)
        key = (self.replicate, stream_key(name), step)
        return generator(self.seed, key, self._key_words(name) + _words(step) if step >= 0 else None)

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
    return generator(seq.entropy, (*seq.spawn_key, 1_000_003, key))
