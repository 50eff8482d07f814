"""Adam (Kingma & Ba 2015) over named weight arrays, updated in place.

With ``g`` the gradient, ``k`` the step count, ``lr`` the learning rate::

    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g**2
    w <- w - lr * sqrt(1 - beta2**k) / (1 - beta1**k) * m / (sqrt(v) + epsilon)

The update is memory-bound (four arrays the size of the weights). ``fused=True`` runs it as one
compiled pass per row block (:func:`.fused.kernels`, Numba), with the same operations in the same
order as the NumPy path, hence the same result bit for bit (tested).

Each array's moments have the array's type, and its update runs in that type: float32 weights
(the learner's ``dtype = "float32"``) have float32 moments, and the scalars (``beta1``,
``beta2``, ``epsilon``, the step size) are rounded to float32 before they enter the update.

**Restarting synapses** (:meth:`Adam.reset`). When development removes or regrows a synapse, the
learner may restart its optimiser state (``learning.optimizer_reset = "restart"``, the package's
default; the released SD-SNN code never touches the optimiser, ``"keep"``). A restart zeroes the
synapse's moments *and* its own step count: the bias correction uses ``k_i = k - k_birth,i``, the
updates since the synapse's moments restarted, so its first update moves by the learning rate,
exactly as a fresh synapse's first update does. (With one global ``k``, as before, a restarted
synapse's bias correction is that of an old optimiser applied to moments that started at zero: with
a constant gradient it moved 2.9x the learning rate on its first update, up to 6x around update 10
and ~3x over 300 updates.) The per-synapse counts are stored only for arrays in which a synapse
has been restarted (an ``int64`` per synapse); arrays never restarted keep the scalar correction,
so a run without development updates bit for bit as before.

Why restart rather than keep: a removed synapse's gradient comes from a different regime (its
postsynaptic neuron may be silent, its latent weight may restart from 0), and a second moment
filled by the large gradients of its active life would shrink its latent updates for about
``1 / (1 - beta2)`` = 1000 updates; a restart makes every synapse's optimiser state describe only
the time since it last appeared or vanished. Keeping the state is available for the released
code's semantics.

:class:`LearningRateSchedule` gives the learning rate of each training batch: constant, a cosine
decay from the base rate to a minimum over the whole run (the released CIFAR-10 SD-SNN script), or
a step decay by a factor every so many epochs (the released MNIST, N-MNIST and DVS-Gesture
scripts: x0.1 every 40 epochs). It is a pure function of the batch index, so a resumed run follows the same
schedule as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Adam", "LearningRateSchedule", "LR_SCHEDULES"]

LR_SCHEDULES = ("constant", "cosine", "step")


@dataclass
class Adam:
    """Adam optimiser state for a set of named arrays.

    Parameters
    ----------
    learning_rate : float
        Step size (normalised potential per update).
    beta1, beta2 : float
        Decay rates of the first and second moment estimates.
    epsilon : float
        Added to the denominator.
    fused : bool
        One compiled pass per row block (Numba) instead of a sequence of NumPy operations.
    """

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    fused: bool = False

    def __post_init__(self) -> None:
        self.step_count = 0
        self.first_moment: dict[str, np.ndarray] = {}
        self.second_moment: dict[str, np.ndarray] = {}
        #: Per array with restarted entries: the global step count at each entry's last restart
        #: (0 = never restarted), int64 of the array's shape.
        self.birth_step: dict[str, np.ndarray] = {}
        self._corrections: list[float] = [math.nan]  # bias correction by per-entry step count k
        self._saturated = False  # the last correction is exactly 1.0 and so are all later ones

    def bias_correction(self, k: int) -> float:
        """``sqrt(1 - beta2**k) / (1 - beta1**k)`` of an entry updated ``k >= 1`` times."""
        return math.sqrt(1.0 - self.beta2**k) / (1.0 - self.beta1**k)

    def _correction_table(self, t: int) -> np.ndarray:
        """Bias corrections for k = 0 .. min(t, saturation) (entry 0 unused).

        The table stops growing once ``1 - beta1**k`` and ``1 - beta2**k`` both round to 1: from
        there on every correction is exactly 1.0, so larger k read its last entry.
        """
        table = self._corrections
        while len(table) <= t and not self._saturated:
            k = len(table)
            table.append(self.bias_correction(k))
            self._saturated = 1.0 - self.beta1**k == 1.0 and 1.0 - self.beta2**k == 1.0
        return np.asarray(table)

    def update(
        self, parameters: dict[str, np.ndarray], gradients: dict[str, np.ndarray], workers=None
    ) -> None:
        """One Adam step: ``parameters[name] -= step`` in place for every gradient given.

        ``workers`` (a :class:`~sdsnn_bio.learning.parallel.RowBlocks`) splits the update of large
        arrays over threads; the result is the same.
        """
        self.step_count += 1
        t = self.step_count
        step_size = self.learning_rate * self.bias_correction(t)
        for name, grad in gradients.items():
            param = parameters[name]
            if name not in self.first_moment:
                self.first_moment[name] = np.zeros_like(param)
                self.second_moment[name] = np.zeros_like(param)
            m, v = self.first_moment[name], self.second_moment[name]
            birth = self.birth_step.get(name)
            if birth is not None:
                steps = self.learning_rate * self._correction_table(t)  # step size by entry count k
                block = self._restarted_block(param, grad, m, v, birth, steps, t)
            elif self.fused and _fusable(param, grad, m, v):
                block = self._fused_block(param, grad, m, v, param.dtype.type(step_size))
            else:
                def block(a: int, b: int) -> None:
                    self._update_block(param[a:b], grad[a:b], m[a:b], v[a:b], step_size)

            if workers is None:
                block(0, param.shape[0])
            else:
                workers.map(block, param.shape[0], 4 if self.fused else 1)

    def _fused_block(self, param, grad, m, v, step_size: float):
        from .fused import kernels

        adam_block = kernels().adam_block
        shape = (param.shape[0], -1)
        arrays = [np.reshape(x, shape) for x in (param, grad, m, v)]  # views: all C-contiguous

        real = param.dtype.type  # scalars in the arrays' type: no promotion inside the kernel

        def block(a: int, b: int) -> None:
            adam_block(*arrays, real(self.beta1), real(self.beta2), real(self.epsilon), step_size, a, b)

        return block

    def _restarted_block(self, param, grad, m, v, birth, steps, t: int):
        """Update of an array with per-entry step counts ``k = t - birth`` (step ``steps[k]``)."""
        last = steps.size - 1
        steps = steps.astype(param.dtype, copy=False)
        real = param.dtype.type
        if self.fused and _fusable(param, grad, m, v) and birth.flags.c_contiguous:
            from .fused import kernels

            adam_block = kernels().adam_block_restarted
            shape = (param.shape[0], -1)
            arrays = [np.reshape(x, shape) for x in (param, grad, m, v, birth)]

            def block(a: int, b: int) -> None:
                adam_block(*arrays, real(self.beta1), real(self.beta2), real(self.epsilon), steps, t, a, b)

            return block

        def block(a: int, b: int) -> None:
            count = np.subtract(t, birth[a:b])
            np.minimum(count, last, out=count)
            self._update_block(param[a:b], grad[a:b], m[a:b], v[a:b], steps[count])

        return block

    def _update_block(self, param, grad, m, v, step_size) -> None:
        scratch = np.multiply(grad, 1.0 - self.beta1)
        m *= self.beta1
        m += scratch
        np.square(grad, out=scratch)
        scratch *= 1.0 - self.beta2
        v *= self.beta2
        v += scratch
        np.sqrt(v, out=scratch)
        scratch += self.epsilon
        np.divide(m, scratch, out=scratch)
        scratch *= step_size
        param -= scratch

    def reset(self, name: str, mask: np.ndarray) -> None:
        """Restart the entries selected by ``mask`` (e.g. regrown synapses) as fresh ones.

        Their moments become 0 and their own step count restarts, so their next update is the
        first update of a fresh entry (it moves by the learning rate; see the module docstring).
        """
        if name not in self.first_moment:
            return  # never updated: every entry is fresh already
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        for moments in (self.first_moment, self.second_moment):
            moments[name][mask] = 0.0
        birth = self.birth_step.get(name)
        if birth is None:
            birth = self.birth_step[name] = np.zeros(self.first_moment[name].shape, dtype=np.int64)
        birth[mask] = self.step_count

    def state_arrays(self, prefix: str = "adam") -> dict[str, np.ndarray]:
        """Step count and moments as named arrays (for ``.npz`` checkpoints)."""
        arrays = {f"{prefix}/step_count": np.array(self.step_count)}
        for name, value in self.first_moment.items():
            arrays[f"{prefix}/m/{name}"] = value
        for name, value in self.second_moment.items():
            arrays[f"{prefix}/v/{name}"] = value
        for name, value in self.birth_step.items():
            arrays[f"{prefix}/birth/{name}"] = value
        return arrays

    def load_state_arrays(self, arrays, prefix: str = "adam") -> None:
        """Restore the state written by :meth:`state_arrays` (moments keep their stored type)."""
        self.step_count = int(arrays[f"{prefix}/step_count"])
        self.first_moment = {
            key[len(prefix) + 3:]: np.array(arrays[key]) for key in arrays if key.startswith(f"{prefix}/m/")
        }
        self.second_moment = {
            key[len(prefix) + 3:]: np.array(arrays[key]) for key in arrays if key.startswith(f"{prefix}/v/")
        }
        births = f"{prefix}/birth/"  # absent in checkpoints without restarted entries
        self.birth_step = {
            key[len(births):]: np.array(arrays[key], dtype=np.int64) for key in arrays if key.startswith(births)
        }


def _fusable(*arrays) -> bool:
    """The compiled update needs C-contiguous arrays of one shape and type, at least 1-D.

    The type is float64 or float32.
    """
    shape, dtype = arrays[0].shape, arrays[0].dtype
    return len(shape) >= 1 and arrays[0].size > 0 and dtype in (np.float64, np.float32) and all(
        x.shape == shape and x.dtype == dtype and x.flags.c_contiguous for x in arrays
    ) and arrays[0].flags.writeable


@dataclass(frozen=True)
class LearningRateSchedule:
    """Learning rate as a function of the training batch.

    ``constant``: ``base`` at every batch. ``cosine``::

        lr(b) = minimum + (base - minimum) * (1 + cos(pi * b / total_batches)) / 2

    for ``b = 0 .. total_batches - 1`` (the batches already done), from ``base`` at the first batch
    down towards ``minimum`` at the last. ``step``::

        lr(b) = base * decay_factor ** floor(e / decay_epochs),   e = floor(b / batches_per_epoch)

    (the epoch of batch ``b``, 0-based). The released scripts call their decay after epoch
    ``e = 40, 80, ...`` (0-based) has trained, so their first decayed epoch is 41, one later than
    here.

    Parameters
    ----------
    kind : {"constant", "cosine"}
    base : float
        Learning rate of the first batch (> 0).
    minimum : float
        Learning rate the cosine decays to (0 <= minimum <= base; ignored by ``constant``).
    total_batches : int
        Training batches of the whole run (>= 1).
    decay_factor : float
        ``step``: the rate is multiplied by it every ``decay_epochs`` epochs, in (0, 1].
    decay_epochs : int
        ``step``: epochs between two decays (>= 1).
    batches_per_epoch : int
        ``step``: training batches per epoch (>= 1).
    """

    kind: str = "constant"
    base: float = 1e-3
    minimum: float = 0.0
    total_batches: int = 1
    decay_factor: float = 0.1
    decay_epochs: int = 40
    batches_per_epoch: int = 1

    def __post_init__(self) -> None:
        if self.kind not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule: expected one of {list(LR_SCHEDULES)}, got {self.kind!r}")
        if not (isinstance(self.base, (int, float)) and math.isfinite(self.base) and self.base > 0):
            raise ValueError(f"learning_rate: expected a finite number > 0, got {self.base!r}")
        if not (isinstance(self.minimum, (int, float)) and 0.0 <= self.minimum <= self.base):
            raise ValueError(
                f"min_learning_rate: expected a number in [0, learning_rate = {self.base!r}], "
                f"got {self.minimum!r}"
            )
        if isinstance(self.total_batches, bool) or not isinstance(self.total_batches, int) \
                or self.total_batches < 1:
            raise ValueError(f"total_batches: expected an integer >= 1, got {self.total_batches!r}")
        if not (isinstance(self.decay_factor, (int, float)) and not isinstance(self.decay_factor, bool)
                and 0.0 < self.decay_factor <= 1.0):
            raise ValueError(f"lr_decay_factor: expected a number in (0, 1], got {self.decay_factor!r}")
        for name, value in (("lr_decay_epochs", self.decay_epochs), ("batches_per_epoch", self.batches_per_epoch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")

    def at(self, batch: int) -> float:
        """Learning rate of training batch ``batch`` (0-based: the number of batches already done)."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 0:
            raise ValueError(f"LearningRateSchedule.at: expected an integer >= 0, got {batch!r}")
        if self.kind == "constant":
            return float(self.base)
        if self.kind == "step":
            epoch = int(batch) // self.batches_per_epoch
            return float(self.base * self.decay_factor ** (epoch // self.decay_epochs))
        progress = min(int(batch), self.total_batches) / self.total_batches
        return float(self.minimum + (self.base - self.minimum) * 0.5 * (1.0 + math.cos(math.pi * progress)))
