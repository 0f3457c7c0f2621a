"""Read-outs of RBMs that model labelled images: occlusion masks, completion error, classification, votes.

Pure numpy, shared by the exact (Gibbs) and the spiking evaluations of every data task and by
ensembles of networks:

* :func:`occlusion_mask`: which pixels of each test image are hidden in pattern completion
  (``"half"``: the bottom half, ``"quarter"``: the bottom-right quadrant, ``"random30"``: 30 % of the
  pixels drawn per image). The network sees the other pixels clamped and fills the hidden ones in.
* :func:`completion_error`: the fraction of hidden pixels predicted wrongly (a pixel is predicted
  on when its unit was on for more than half the read-out time, or its mean Gibbs state exceeds 1/2).
* :func:`predicted_labels`: the label unit most active with the image clamped.
* :func:`majority_vote` and :func:`vote_completion`: the ensemble's answer from its networks' answers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["OCCLUSIONS", "RANDOM_OCCLUDED_FRACTION", "occlusion_mask", "completion_error", "predicted_labels",
           "majority_vote", "vote_completion", "accuracy"]

#: Occlusion kinds of pattern completion (see :func:`occlusion_mask`).
OCCLUSIONS = ("half", "quarter", "random30")
#: Share of the pixels hidden by the ``"random30"`` occlusion.
RANDOM_OCCLUDED_FRACTION = 0.3


def occlusion_mask(kind: str, n_images: int, side: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Hidden pixels of ``n_images`` square images of ``side`` x ``side`` pixels (row-major).

    Parameters
    ----------
    kind : {"half", "quarter", "random30"}
        ``"half"``: rows ``side // 2 ..`` (the bottom half); ``"quarter"``: rows and columns
        ``side // 2 ..`` (the bottom-right quadrant); ``"random30"``: ``round(0.3 * side**2)`` pixels
        per image, drawn independently for every image from ``rng``.
    n_images, side : int
    rng : numpy Generator
        Needed for ``"random30"``.

    Returns
    -------
    bool array (n_images, side * side), True where a pixel is hidden.

    Examples
    --------
    >>> occlusion_mask("quarter", 1, 4).reshape(4, 4).astype(int)
    array([[0, 0, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    """
    if kind not in OCCLUSIONS:
        raise ValueError(f"occlusion must be one of {OCCLUSIONS}, got {kind!r}")
    n_images, side = int(n_images), int(side)
    if n_images < 0 or side < 2:
        raise ValueError(f"need n_images >= 0 and side >= 2, got {n_images} and {side}")
    grid = np.zeros((side, side), dtype=bool)
    if kind == "half":
        grid[side // 2:, :] = True
    elif kind == "quarter":
        grid[side // 2:, side // 2:] = True
    else:
        if rng is None:
            raise ValueError("the random30 occlusion needs a random generator (rng)")
        n_hidden = int(round(RANDOM_OCCLUDED_FRACTION * side * side))
        mask = np.zeros((n_images, side * side), dtype=bool)
        for row in mask:
            row[rng.choice(side * side, n_hidden, replace=False)] = True
        return mask
    return np.tile(grid.reshape(-1), (n_images, 1))


def completion_error(on_fraction: np.ndarray, truth: np.ndarray, occluded: np.ndarray) -> float:
    """Fraction of hidden pixels predicted wrongly, over all images.

    ``on_fraction`` (n, P): time each pixel unit was on (or mean Gibbs state); a pixel is predicted on
    above 1/2. ``truth`` (n, P) binary images; ``occluded`` (n, P) bool, the hidden pixels scored.
    """
    on_fraction, truth = np.asarray(on_fraction, dtype=float), np.asarray(truth, dtype=float)
    occluded = np.asarray(occluded, dtype=bool)
    if not on_fraction.shape == truth.shape == occluded.shape:
        raise ValueError(f"on_fraction, truth and occluded must have one shape, got {on_fraction.shape}, "
                         f"{truth.shape}, {occluded.shape}")
    if not occluded.any():
        raise ValueError("occluded hides no pixel: nothing to complete")
    wrong = (on_fraction > 0.5) != (truth > 0.5)
    return float(wrong[occluded].mean())


def predicted_labels(label_activity: np.ndarray) -> np.ndarray:
    """The most active label unit per image (``label_activity`` (..., n, L)); ties go to the lower label."""
    return np.argmax(np.asarray(label_activity, dtype=float), axis=-1)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Share of ``predicted`` equal to ``labels``."""
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def majority_vote(label_activity: np.ndarray) -> np.ndarray:
    """The ensemble's label per image: the label most networks predict (plurality).

    Parameters
    ----------
    label_activity : array (M, n, L)
        Label-unit activity of each of M networks for n images.

    Returns
    -------
    int array (n,). A tie between labels with the same number of votes is broken by the summed
    activity of those labels over all networks (then the lower label).

    Examples
    --------
    >>> a = np.array([[[0.9, 0.1, 0.0]], [[0.2, 0.7, 0.1]], [[0.1, 0.6, 0.3]]])
    >>> majority_vote(a)     # networks vote 0, 1, 1
    array([1])
    """
    activity = np.asarray(label_activity, dtype=float)
    if activity.ndim != 3:
        raise ValueError(f"label_activity must be (networks, images, labels), got shape {activity.shape}")
    votes = predicted_labels(activity)                                   # (M, n)
    n_labels = activity.shape[2]
    counts = np.stack([(votes == k).sum(axis=0) for k in range(n_labels)], axis=1)   # (n, L)
    total = activity.sum(axis=0)                                          # (n, L)
    tied = counts == counts.max(axis=1, keepdims=True)
    return np.argmax(np.where(tied, total, -np.inf), axis=1)


def vote_completion(on_fraction: np.ndarray) -> np.ndarray:
    """The ensemble's completion: a pixel is on where more than half of the M networks predict it on.

    ``on_fraction`` (M, n, P) -> (n, P) of 0.0 / 1.0 (use with :func:`completion_error`).
    """
    on_fraction = np.asarray(on_fraction, dtype=float)
    if on_fraction.ndim != 3:
        raise ValueError(f"on_fraction must be (networks, images, pixels), got shape {on_fraction.shape}")
    return ((on_fraction > 0.5).sum(axis=0) * 2 > on_fraction.shape[0]).astype(float)
