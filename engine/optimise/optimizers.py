"""First-order optimisers that update only the image parameters.

Written out rather than taken from ``keras.optimizers`` so that their whole state is a few named tensors: a
checkpoint can save it and a resumed run continues bit for bit, and the update fits in the engine's single
``tf.function`` step.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ParameterError
from ..models.tf import tf

OPTIMIZERS = ("adam", "sgd", "lbfgs")


class Optimizer:
    """Base: ``apply(grads, variables)`` updates in place (descent: ``v -= lr * update(g)``)."""

    name = "base"

    def __init__(self, lr: float) -> None:
        if not lr > 0:
            raise ParameterError(f"learning rate {lr!r} must be > 0")
        self.lr = float(lr)
        self.slots: dict[str, list[tf.Variable]] = {}

    def build(self, variables: Sequence[tf.Variable]) -> None:
        """Create state for these variables (called once per stage, when the image size changes)."""

    def apply(self, grads: Sequence[tf.Tensor], variables: Sequence[tf.Variable]) -> None:
        raise NotImplementedError

    def state(self) -> dict[str, list]:
        return {k: [v.numpy() for v in vs] for k, vs in self.slots.items()}

    def load_state(self, state: dict[str, list]) -> None:
        for k, values in state.items():
            for var, value in zip(self.slots[k], values, strict=True):
                var.assign(value)


class SGD(Optimizer):
    """Plain gradient descent (DeepDream's update is SGD on a normalised gradient)."""

    name = "sgd"

    def apply(self, grads: Sequence[tf.Tensor], variables: Sequence[tf.Variable]) -> None:
        for g, v in zip(grads, variables, strict=True):
            v.assign_sub(self.lr * g)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``keras.optimizers.Adam`` computes it."""

    name = "adam"

    def __init__(self, lr: float, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7) -> None:
        super().__init__(lr)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def build(self, variables: Sequence[tf.Variable]) -> None:
        self.slots = {
            "m": [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables],
            "v": [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables],
            "t": [tf.Variable(0.0, trainable=False)],
        }

    def apply(self, grads: Sequence[tf.Tensor], variables: Sequence[tf.Variable]) -> None:
        t = self.slots["t"][0]
        t.assign_add(1.0)
        lr = self.lr * tf.sqrt(1.0 - tf.pow(self.beta_2, t)) / (1.0 - tf.pow(self.beta_1, t))
        for g, v, m, s in zip(grads, variables, self.slots["m"], self.slots["v"], strict=True):
            m.assign(self.beta_1 * m + (1.0 - self.beta_1) * g)
            s.assign(self.beta_2 * s + (1.0 - self.beta_2) * tf.square(g))
            v.assign_sub(lr * m / (tf.sqrt(s) + self.epsilon))


def make_optimizer(name: str, lr: float, **kwargs: float) -> Optimizer:
    """``adam`` or ``sgd`` (``lbfgs`` is driven by the solver itself through SciPy)."""
    if name == "adam":
        return Adam(lr, **kwargs)
    if name == "sgd":
        return SGD(lr)
    raise ParameterError(f"optimizer {name!r} is unknown; use one of {', '.join(OPTIMIZERS)}")
