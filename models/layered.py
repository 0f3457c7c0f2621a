"""One description of a layered rate network, shared by the microcircuit and Lagrangian dynamics.

A network is a list of weight matrices ``W[l]`` of shape (n_{l+1}, n_l) and bias vectors
``b[l]`` of shape (n_{l+1},), an activation function ``phi`` for hidden layers, and an output
layer that is either linear or uses ``phi`` too. Both dynamics (``cortexsim.models.microcircuit``
and ``cortexsim.models.latent_equilibrium``) read this description, and the reference gradients
(plain error backpropagation in numpy) used to check them live here too.

Potentials and rates are dimensionless (arbitrary units), as in the papers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

__all__ = ["Activation", "LayeredNetwork", "logistic", "soft_relu", "tanh", "linear", "hard_sigmoid"]


@dataclass(frozen=True)
class Activation:
    """A transfer function phi(u) with its derivative phi'(u), both elementwise numpy functions."""

    name: str
    phi: callable
    dphi: callable
    params: dict = field(default_factory=dict)


def logistic(slope: float = 1.0) -> Activation:
    """phi(u) = 1 / (1 + exp(-slope * u))."""
    def phi(u):
        return expit(slope * u) if slope != 1.0 else expit(u)

    def dphi(u):
        s = phi(u)
        return slope * s * (1.0 - s)

    return Activation("logistic", phi, dphi, {"slope": slope})


def soft_relu(gamma: float = 1.0, beta: float = 1.0, theta: float = 0.0) -> Activation:
    """phi(u) = gamma * log(1 + exp(beta * (u - theta))) (Sacramento et al.'s soft rectifier)."""
    def phi(u):
        return gamma * np.logaddexp(0.0, beta * (u - theta))

    def dphi(u):
        return gamma * beta * 0.5 * (1.0 + np.tanh(0.5 * beta * (u - theta)))

    return Activation("soft_relu", phi, dphi, {"gamma": gamma, "beta": beta, "theta": theta})


def hard_sigmoid() -> Activation:
    """phi(u) = min(max(u, 0), 1) (Haider et al. 2021's MNIST networks); phi' = 1 on (0, 1), else 0."""
    def phi(u):
        return np.clip(u, 0.0, 1.0)

    def dphi(u):
        u = np.asarray(u)
        return ((u > 0.0) & (u < 1.0)).astype(u.dtype if np.issubdtype(u.dtype, np.floating) else float)

    return Activation("hard_sigmoid", phi, dphi)


def tanh() -> Activation:
    """phi(u) = tanh(u)."""
    return Activation("tanh", np.tanh, lambda u: 1.0 - np.tanh(u) ** 2)


def linear() -> Activation:
    """phi(u) = u (float32 stays float32)."""
    def phi(u):
        u = np.asarray(u)
        return u if np.issubdtype(u.dtype, np.floating) else u.astype(float)

    def dphi(u):
        u = np.asarray(u)
        return np.ones_like(u, dtype=u.dtype if np.issubdtype(u.dtype, np.floating) else float)

    return Activation("linear", phi, dphi)


ACTIVATIONS = {"logistic": logistic, "soft_relu": soft_relu, "tanh": tanh, "linear": linear,
               "hard_sigmoid": hard_sigmoid}


@dataclass
class LayeredNetwork:
    """Weights, biases and transfer functions of a layered network.

    Attributes
    ----------
    weights : list of ndarray
        ``weights[l]`` has shape (sizes[l+1], sizes[l]).
    biases : list of ndarray
        ``biases[l]`` has shape (sizes[l+1],).
    hidden : Activation
        Transfer function of hidden layers.
    output : Activation
        Transfer function of the output layer (``linear()`` for a linear read-out).
    """

    weights: list
    biases: list
    hidden: Activation
    output: Activation

    def __post_init__(self):
        if len(self.weights) != len(self.biases) or not self.weights:
            raise ValueError("weights and biases must be non-empty lists of equal length, "
                             f"got {len(self.weights)} and {len(self.biases)}")
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            if w.ndim != 2 or b.shape != (w.shape[0],):
                raise ValueError(f"layer {l}: weights shape {w.shape} and biases shape {b.shape} do not match")
            if l and w.shape[1] != self.weights[l - 1].shape[0]:
                raise ValueError(f"layer {l}: weights take {w.shape[1]} inputs but layer {l-1} has "
                                 f"{self.weights[l - 1].shape[0]} units")

    @property
    def sizes(self) -> list[int]:
        """Layer sizes, input first."""
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @classmethod
    def random(cls, sizes, seed: int, hidden: Activation | None = None, output: Activation | None = None,
               weight_scale: float = 1.0, bias_scale: float = 0.0) -> "LayeredNetwork":
        """Random network: W ~ N(0, weight_scale^2 / fan_in), b ~ N(0, bias_scale^2)."""
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least two positive layer sizes, got {sizes}")
        rng = np.random.default_rng(seed)
        weights = [rng.normal(0.0, weight_scale / np.sqrt(n_in), size=(n_out, n_in))
                   for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        biases = [rng.normal(0.0, bias_scale, size=n_out) if bias_scale > 0 else np.zeros(n_out)
                  for n_out in sizes[1:]]
        return cls(weights, biases, hidden or logistic(), output or linear())

    def copy(self) -> "LayeredNetwork":
        return LayeredNetwork([w.copy() for w in self.weights], [b.copy() for b in self.biases],
                              self.hidden, self.output)

    def activation(self, layer: int) -> Activation:
        """Transfer function of weight layer ``layer`` (0-based; the last is the output)."""
        return self.output if layer == len(self.weights) - 1 else self.hidden

    def forward(self, x: np.ndarray) -> tuple[list, list]:
        """Feed-forward pass. Returns potentials ``u[l]`` and rates ``r[l]`` (``r[0] = x``).

        ``x`` may be one sample (n_in,) or a batch (n_samples, n_in).
        """
        x = np.asarray(x, dtype=float)
        if x.shape[-1] != self.sizes[0]:
            raise ValueError(f"x has {x.shape[-1]} inputs, the network expects {self.sizes[0]}")
        us, rs = [x], [x]
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            u = rs[-1] @ w.T + b
            us.append(u)
            rs.append(self.activation(l).phi(u))
        return us, rs

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Output rates for input(s) ``x``."""
        return self.forward(x)[1][-1]

    def cost(self, x: np.ndarray, target: np.ndarray) -> float:
        """Mean over samples of C = 1/2 ||target - output||^2."""
        out = self.predict(x)
        return float(0.5 * np.mean(np.sum((np.atleast_2d(target) - np.atleast_2d(out)) ** 2, axis=-1)))

    def backprop(self, x: np.ndarray, target: np.ndarray) -> tuple[list, list]:
        """Gradients dC/dW[l] and dC/db[l] of C = 1/2 ||target - output||^2 for ONE sample."""
        x = np.asarray(x, dtype=float)
        target = np.asarray(target, dtype=float)
        if x.ndim != 1 or target.shape != (self.sizes[-1],):
            raise ValueError(f"backprop takes one sample: x shape ({self.sizes[0]},) and target shape "
                             f"({self.sizes[-1]},); got {x.shape} and {target.shape}")
        us, rs = self.forward(x)
        n = len(self.weights)
        delta = -(target - rs[-1]) * self.output.dphi(us[-1])
        grad_w, grad_b = [None] * n, [None] * n
        for l in range(n - 1, -1, -1):
            grad_w[l] = np.outer(delta, rs[l])
            grad_b[l] = delta.copy()
            if l:
                delta = (self.weights[l].T @ delta) * self.hidden.dphi(us[l])
        return grad_w, grad_b

    def batch_gradients(self, x: np.ndarray, target: np.ndarray) -> tuple[list, list]:
        """Gradients of C = 1/2 sum over samples ||target - output||^2, for a batch (rows), by backprop.

        The sum over the batch of :meth:`backprop`'s per-sample gradients, computed with matrix
        products in the dtype of the weights (float32 stays float32).

        Parameters
        ----------
        x : ndarray (batch, n_in)
            Inputs.
        target : ndarray (batch, n_out)
            Targets.

        Returns
        -------
        grad_w, grad_b : lists of ndarray
            dC/dW[l] and dC/db[l] (shapes of the weights and biases).

        Examples
        --------
        >>> net = LayeredNetwork.random([3, 4, 2], seed=0)
        >>> gw, gb = net.batch_gradients(np.ones((5, 3)), np.zeros((5, 2)))
        >>> [g.shape for g in gw]
        [(4, 3), (2, 4)]
        """
        dtype = np.result_type(*self.weights)
        x = np.atleast_2d(np.asarray(x, dtype=dtype))
        target = np.atleast_2d(np.asarray(target, dtype=dtype))
        if x.shape[1] != self.sizes[0] or target.shape != (x.shape[0], self.sizes[-1]):
            raise ValueError(f"batch_gradients needs x (batch, {self.sizes[0]}) and target (batch, "
                             f"{self.sizes[-1]}); got {x.shape} and {target.shape}")
        us, rs = self.forward_batch(x)
        n = len(self.weights)
        delta = (rs[-1] - target) * self.output.dphi(us[-1])
        grad_w, grad_b = [None] * n, [None] * n
        for l in range(n - 1, -1, -1):
            grad_w[l] = delta.T @ rs[l]
            grad_b[l] = delta.sum(axis=0)
            if l:
                delta = (delta @ self.weights[l]) * self.hidden.dphi(us[l])
        return grad_w, grad_b

    def forward_batch(self, x: np.ndarray) -> tuple[list, list]:
        """:meth:`forward` for a batch (batch, n_in) in the weights' dtype (no conversion to float64)."""
        us, rs = [x], [x]
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            u = rs[-1] @ w.T + b
            us.append(u)
            rs.append(self.activation(l).phi(u))
        return us, rs

    def accuracy(self, x: np.ndarray, labels: np.ndarray) -> float:
        """Fraction of samples whose largest output is the label."""
        return float(np.mean(np.argmax(self.predict(x), axis=-1) == np.asarray(labels)))


def angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between two arrays seen as flat vectors (nan if either is zero)."""
    a = np.ravel(a)
    b = np.ravel(b)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    cos = np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)))
