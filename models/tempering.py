"""Parallel tempering with Gibbs sweeps: the non-spiking reference sampler for multimodal BMs.

``K`` replicas of a Boltzmann machine run at inverse temperatures ``1 = beta_0 > beta_1 > ... >
beta_{K-1} > 0`` (replica ``k`` samples ``p_k(z) ∝ exp(-beta_k E(z))``). One step is a sequential Gibbs
sweep of every replica (units 0 .. n-1, ``p(z_i = 1 | rest) = sigmoid(beta_k (b_i + sum_j W_ij z_j))``),
then a swap attempt between every pair of neighbouring temperatures (even pairs on even steps, odd
pairs on odd steps), accepted with probability ``min(1, exp((beta_k - beta_{k+1}) (E_k - E_{k+1})))``.
Both moves leave the product of the ``p_k`` invariant, so the ``beta = 1`` chain samples the BM itself
while hot replicas carry it across energy barriers (Swendsen & Wang 1986; Geyer 1991).

Energies follow :mod:`cortexsim.models.boltzmann`: ``E(z) = -1/2 z^T W z - b^T z``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .boltzmann import BoltzmannMachine

__all__ = ["TemperingResult", "geometric_betas", "parallel_tempering"]


def geometric_betas(n_replicas: int, beta_min: float) -> np.ndarray:
    """``n_replicas`` inverse temperatures from 1 down to ``beta_min``, geometrically spaced.

    Examples
    --------
    >>> geometric_betas(3, 0.25)
    array([1.  , 0.5 , 0.25])
    """
    if int(n_replicas) != n_replicas or n_replicas < 1:
        raise ValueError(f"n_replicas must be an integer >= 1, got {n_replicas!r}")
    if not np.isfinite(beta_min) or not 0 < beta_min <= 1:
        raise ValueError(f"beta_min must lie in (0, 1], got {beta_min!r}")
    if int(n_replicas) == 1:
        return np.ones(1)
    return np.geomspace(1.0, float(beta_min), int(n_replicas))


@dataclass
class TemperingResult:
    """Samples of the ``beta = 1`` replica and the sampler's statistics.

    Attributes
    ----------
    samples : np.ndarray
        (n_steps, n) uint8: the ``beta = 1`` replica after each step (sweep + swap attempt).
    betas : np.ndarray
        Inverse temperatures of the replicas.
    swap_acceptance : np.ndarray
        (K - 1,) accepted fraction of swap attempts between temperatures k and k + 1.
    cpu_time_s : float
        Process CPU time of the sampling loop (s).
    """

    samples: np.ndarray
    betas: np.ndarray
    swap_acceptance: np.ndarray
    cpu_time_s: float


def parallel_tempering(bm: BoltzmannMachine, betas, n_steps: int | None, seed: int | None,
                       cpu_budget_s: float | None = None, burn_in: int = 100) -> TemperingResult:
    """Sample ``bm`` with parallel tempering (Gibbs sweeps + neighbour swaps); see the module docstring.

    Parameters
    ----------
    bm : BoltzmannMachine
    betas : array (K,)
        Inverse temperatures, strictly decreasing, ``betas[0] == 1``, all > 0.
    n_steps : int or None
        Recorded steps (each a sweep of every replica and a swap attempt). ``None``: run until
        ``cpu_budget_s`` of process CPU time is used (checked every 256 steps).
    seed : int or None
        Seed of ``numpy.random.default_rng``.
    cpu_budget_s : float, optional
        CPU-time budget (s, > 0) when ``n_steps`` is None.
    burn_in : int
        Steps discarded before recording (>= 0).

    Returns
    -------
    TemperingResult

    Examples
    --------
    >>> from cortexsim.models.multimodal import bistable_bm
    >>> result = parallel_tempering(bistable_bm(6, 0.4).bm, geometric_betas(4, 0.2), 1000, seed=1)
    >>> result.samples.shape
    (1000, 6)
    """
    if not isinstance(bm, BoltzmannMachine):
        raise TypeError(f"bm must be a BoltzmannMachine, got {type(bm).__name__}")
    betas = np.asarray(betas, dtype=float)
    if betas.ndim != 1 or betas.size < 1 or not np.all(np.isfinite(betas)):
        raise ValueError(f"betas must be a non-empty 1-D array of finite numbers, got {betas!r}")
    if betas[0] != 1.0 or np.any(betas <= 0) or np.any(np.diff(betas) >= 0):
        raise ValueError(f"betas must start at 1, decrease strictly and stay > 0, got {betas.tolist()}")
    if n_steps is None:
        if cpu_budget_s is None or not np.isfinite(cpu_budget_s) or cpu_budget_s <= 0:
            raise ValueError(f"cpu_budget_s must be a finite time > 0 (s) when n_steps is None, got {cpu_budget_s!r}")
    elif int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer or None, got {n_steps!r}")
    if int(burn_in) != burn_in or burn_in < 0:
        raise ValueError(f"burn_in must be an integer >= 0, got {burn_in!r}")
    rng = np.random.default_rng(seed)
    n, K = bm.n_units, betas.size
    W, b = bm.W, bm.b
    z = rng.integers(0, 2, size=(K, n)).astype(float)
    accepted = np.zeros(max(K - 1, 0))
    attempted = np.zeros(max(K - 1, 0))
    capacity = int(n_steps) if n_steps is not None else 4096
    out = np.empty((capacity, n), dtype=np.uint8)
    recorded, step = 0, 0
    block = 512  # random numbers are drawn per block of steps
    start = time.process_time()
    done = False
    while not done:
        uniforms = rng.random((block, K, n))
        logit_u = np.log(uniforms) - np.log1p(-uniforms)  # z_i = 1 iff logit(u) < beta * field
        swap_u = np.log(rng.random((block, K)))
        for s in range(block):
            # Sequential Gibbs sweep of all replicas at once (the replicas are independent here).
            row = logit_u[s]
            for i in range(n):
                z[:, i] = row[:, i] < betas * (b[i] + z @ W[i])
            # Swap attempts between neighbours (even pairs on even steps, odd pairs on odd steps).
            if K > 1:
                e = -0.5 * np.einsum("ki,ij,kj->k", z, W, z) - z @ b
                for k in range(step % 2, K - 1, 2):
                    attempted[k] += 1
                    if swap_u[s, k] < (betas[k] - betas[k + 1]) * (e[k] - e[k + 1]):
                        z[[k, k + 1]] = z[[k + 1, k]]
                        e[[k, k + 1]] = e[[k + 1, k]]
                        accepted[k] += 1
            step += 1
            if step <= burn_in:
                continue
            if recorded == capacity:
                out = np.concatenate([out, np.empty_like(out)])
                capacity = out.shape[0]
            out[recorded] = z[0]
            recorded += 1
            if n_steps is not None and recorded == n_steps:
                done = True
                break
            if n_steps is None and recorded % 256 == 0 and time.process_time() - start >= cpu_budget_s:
                done = True
                break
    cpu = time.process_time() - start
    acceptance = np.divide(accepted, attempted, out=np.zeros_like(accepted), where=attempted > 0)
    return TemperingResult(out[:recorded].copy(), betas, acceptance, cpu)
