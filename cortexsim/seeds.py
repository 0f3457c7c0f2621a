"""One way to derive every random stream of a run from its seed.

A run has one user seed. Every random stream inside it (a simulator seed, a numpy generator for
targets, data order, initial weights, ...) is derived from ``(seed, *keys)`` through numpy's
:class:`~numpy.random.SeedSequence`, where the integer ``keys`` name the stream (a constant per
purpose, often followed by an index such as an iteration or a network number). Streams with
different keys are statistically independent; the same ``(seed, *keys)`` gives the same stream on
every machine. No stream is derived by adding offsets to the seed (``seed + 1`` for one purpose
collides with the next run's ``seed`` for another).

* :func:`derive_seed` - an integer seed in ``[1, 2**31 - 1]`` for a simulator's ``setup(seed=...)``
  (NEST and Brian2 accept this range).
* :func:`derive_rng` - a :class:`numpy.random.Generator` for numpy draws.
* :func:`check_seed` - validation of a user seed (an integer in ``[0, 2**32 - 1]``).

``derive_rng(seed, k)`` equals ``numpy.random.default_rng([seed, k])``, and
``derive_seed(seed, *keys)`` equals the former ``protocols.cd_network.derived_seed``, so results
computed before this module existed are reproduced bit for bit.

Examples
--------
>>> derive_seed(1, 0, 5) == derive_seed(1, 0, 5)
True
>>> derive_seed(1, 0, 5) != derive_seed(1, 0, 6)
True
>>> float(derive_rng(7, 2).random()) == float(derive_rng(7, 2).random())
True
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["MAX_SEED", "MAX_SIMULATOR_SEED", "check_seed", "derive_seed", "derive_rng"]

#: Largest user seed (seeds are unsigned 32-bit integers).
MAX_SEED = 2**32 - 1
#: Largest simulator seed handed to ``sim.setup(seed=...)``.
MAX_SIMULATOR_SEED = 2**31 - 1


def check_seed(seed, name: str = "seed") -> int:
    """Return ``seed`` as an int; ValueError unless it is an integer in ``[0, 2**32 - 1]``.

    Examples
    --------
    >>> check_seed(3)
    3
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"{name} must be an integer in [0, {MAX_SEED}], got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"{name} must be an integer in [0, {MAX_SEED}], got {seed}")
    return int(seed)


def _sequence(seed: int, keys) -> np.random.SeedSequence:
    words = [int(seed) & 0xFFFFFFFF]
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, numbers.Integral) or int(key) < 0:
            raise ValueError(f"seed keys must be integers >= 0, got {key!r}")
        words.append(int(key))
    return np.random.SeedSequence(words)


def derive_seed(seed: int, *keys: int) -> int:
    """A simulator seed in ``[1, 2**31 - 1]`` for the stream ``keys`` of the run ``seed``.

    Parameters
    ----------
    seed : int
        The run's seed (only its lowest 32 bits are used).
    *keys : int
        Integers >= 0 naming the stream (a purpose constant, then e.g. an iteration).

    Examples
    --------
    >>> 1 <= derive_seed(42, 3) <= 2**31 - 1
    True
    """
    value = _sequence(seed, keys).generate_state(1)[0]
    return int(value % (MAX_SIMULATOR_SEED - 1)) + 1


def derive_rng(seed: int, *keys: int) -> np.random.Generator:
    """A numpy Generator for the stream ``keys`` of the run ``seed``.

    Without keys it is ``numpy.random.default_rng(seed)``; with keys ``default_rng([seed, *keys])``.

    Examples
    --------
    >>> rng = derive_rng(42, 1)
    >>> rng.integers(0, 10, 3).shape
    (3,)
    """
    return np.random.default_rng(_sequence(seed, keys))
