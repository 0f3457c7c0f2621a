"""Running a simulation in chunks with a progress bar (tqdm) for long runs."""

from __future__ import annotations

from types import ModuleType

import numpy as np

__all__ = ["run_with_progress"]


def run_with_progress(sim: ModuleType, duration_ms: float, enabled: bool = True, label: str = "simulating",
                      chunk_ms: float | None = None) -> None:
    """Advance ``sim`` by ``duration_ms`` (ms), in chunks with a progress bar when ``enabled``.

    The chunking does not change the result: PyNN continues the same run. Without progress the
    whole duration runs in one call (least overhead).
    """
    if not np.isfinite(duration_ms) or duration_ms <= 0:
        raise ValueError(f"duration_ms must be a finite number > 0 (ms), got {duration_ms}")
    if not enabled:
        sim.run(duration_ms)
        return
    from tqdm import tqdm

    if chunk_ms is None:
        chunk_ms = max(duration_ms / 20.0, min(duration_ms, 1000.0))
    # Time is tracked here: asking the simulator (PyNN's get_current_time on NEST queries the whole
    # kernel status) costs more than a short chunk.
    n_chunks = max(1, int(np.ceil(duration_ms / chunk_ms - 1e-9)))
    steps = np.full(n_chunks, duration_ms / n_chunks)
    with tqdm(total=float(duration_ms), desc=label, unit="ms", unit_scale=True) as bar:
        for step in steps:
            sim.run(float(step))
            bar.update(float(step))
