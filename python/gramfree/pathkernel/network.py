"""The network a path-kernel model trains: its layer widths, parameter layout and starting
point, and the spec dict that the native trainer (csrc/pathkernel/) reads.

Parameters travel as one flat float64 vector, layer by layer: ``W_l`` (fan_in x fan_out,
row-major, scikit-learn's ``coefs_[l]``) then ``b_l`` (``intercepts_[l]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVATIONS = ("identity", "relu", "tanh", "softplus", "gelu")
LOSSES = ("squared", "softmax", "logistic")


@dataclass(frozen=True)
class Network:
    sizes: tuple[int, ...]  # (n_features, *hidden, n_outputs)
    activation: str
    loss: str

    @property
    def n_params(self) -> int:
        return sum((a + 1) * b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def spec(
        self,
        *,
        learning_rate: float,
        n_steps: int,
        batch_size: int,
        alpha: float,
        seed: int,
        shuffle: bool,
    ) -> dict:
        return {
            "sizes": list(self.sizes),
            "activation": self.activation,
            "loss": self.loss,
            "learning_rate": float(learning_rate),
            "n_steps": int(n_steps),
            "batch_size": int(batch_size),
            "alpha": float(alpha),
            "seed": int(seed),
            "shuffle": bool(shuffle),
        }

    def initial_params(self, rng: np.random.RandomState) -> np.ndarray:
        """Glorot-uniform weights and biases, as scikit-learn's MLP initialises them:
        U(-b, b) with b = sqrt(6 / (fan_in + fan_out))."""
        parts = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            parts.append(rng.uniform(-bound, bound, (fan_in, fan_out)).ravel())
            parts.append(rng.uniform(-bound, bound, fan_out))
        return np.concatenate(parts)

    def unpack(self, params: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(coefs, intercepts): per layer, copies shaped (fan_in, fan_out) and (fan_out,)."""
        coefs, intercepts, at = [], [], 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            coefs.append(params[at : at + fan_in * fan_out].reshape(fan_in, fan_out).copy())
            at += fan_in * fan_out
            intercepts.append(params[at : at + fan_out].copy())
            at += fan_out
        return coefs, intercepts

    def pack(self, coefs, intercepts) -> np.ndarray:
        parts = []
        for W, b in zip(coefs, intercepts):
            parts += [
                np.asarray(W, dtype=np.float64).ravel(),
                np.asarray(b, dtype=np.float64).ravel(),
            ]
        params = np.concatenate(parts)
        if params.size != self.n_params:
            raise ValueError(f"parameters: {params.size} values, the network has {self.n_params}")
        return params
