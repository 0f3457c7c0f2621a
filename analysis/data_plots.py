"""Figures of RBMs that model labelled images: confusion matrix, completion examples, receptive fields.

Drawn on matplotlib's Agg canvas (as :mod:`cortexsim.analysis.plots`); every function takes the output
``path``, saves a PNG and returns the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .plots import _new_figure, _save

__all__ = ["confusion_matrix", "plot_confusion_matrix", "plot_completion_examples", "plot_receptive_fields"]


def confusion_matrix(labels, predicted, n_labels: int) -> np.ndarray:
    """Counts (n_labels, n_labels): row = true label, column = predicted label.

    Examples
    --------
    >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2)
    array([[1, 0],
           [1, 1]])
    """
    counts = np.zeros((n_labels, n_labels), dtype=int)
    np.add.at(counts, (np.asarray(labels, dtype=int), np.asarray(predicted, dtype=int)), 1)
    return counts


def plot_confusion_matrix(counts: np.ndarray, path: str | Path, title: str | None = None) -> Path:
    """Confusion matrix (row = true label, column = predicted), counts written in the cells."""
    counts = np.asarray(counts)
    fig = _new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    image = ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        if value:
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > counts.max() / 2 else "black")
    ax.set_xticks(range(counts.shape[1]))
    ax.set_yticks(range(counts.shape[0]))
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    fig.colorbar(image, ax=ax, label="test images")
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_completion_examples(rows: Mapping[str, Sequence[dict]], side: int, path: str | Path,
                             title: str | None = None) -> Path:
    """Pattern-completion examples: per example the input, the occluded input, the completion, the truth.

    ``rows`` maps a row label (e.g. the occlusion kind) to a list of examples, each a dict with
    ``truth`` (P,) binary pixels, ``occluded`` (P,) bool (hidden pixels) and ``completed`` (P,) on-fractions
    of the pixel units (time on / read-out time). The occluded input shows hidden pixels in grey.
    """
    n_rows = len(rows)
    n_examples = max((len(v) for v in rows.values()), default=0)
    fig = _new_figure(1.6 * 4 * max(n_examples, 1) / 2 + 1.0, 1.7 * max(n_rows, 1) + 0.6)
    grid = fig.add_gridspec(max(n_rows, 1), 4 * max(n_examples, 1))
    columns = ("input", "occluded", "completed", "truth")
    for r, (label, examples) in enumerate(rows.items()):
        for e, example in enumerate(examples):
            truth = np.asarray(example["truth"], dtype=float)
            occluded = np.asarray(example["occluded"], dtype=bool)
            completed = np.asarray(example["completed"], dtype=float)
            shown = np.where(occluded, 0.5, truth)
            filled = np.where(occluded, completed, truth)
            for c, (name, image) in enumerate(zip(columns, (truth, shown, filled, truth))):
                ax = fig.add_subplot(grid[r, 4 * e + c])
                ax.imshow(image.reshape(side, side), cmap="gray_r", vmin=0.0, vmax=1.0)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(name, fontsize=7)
                if e == 0 and c == 0:
                    ax.set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_receptive_fields(weights: np.ndarray, side: int, path: str | Path, n_shown: int = 32,
                          title: str | None = None) -> Path:
    """Pixel -> hidden weights (P, n_hidden) of the first ``n_shown`` hidden units as images (BM units)."""
    weights = np.asarray(weights, dtype=float)
    n = min(int(n_shown), weights.shape[1])
    columns = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / max(columns, 1)))
    fig = _new_figure(1.1 * columns + 1.0, 1.1 * rows + 0.6)
    limit = float(np.abs(weights[:, :n]).max()) or 1.0
    for k in range(n):
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.imshow(weights[:, k].reshape(side, side), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or f"receptive fields (weights, BM units; colour range +-{limit:.2f})", fontsize=9)
    return _save(fig, path)
