"""Deterministic parameter fill shared with tests/golden_fill.h, so PyTorch and minidl build
bit-identical weights without committing them (a ResNet50 is 100 MB; the goldens stay small).

For the tensor called `key` and element i (row-major):
    u_i = (splitmix64(fnv1a64(key) + i) >> 11) * 2^-53          in [0, 1)
computed in uint64 / float64, then mapped per kind of tensor (see `fill`), then cast to
float32. Both sides do the same IEEE operations in the same order, so the float32 values
are identical.
"""
import math

import numpy as np

_MASK = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & _MASK
    return h


def uniform01(key, n):
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a64(key)) + np.arange(n, dtype=np.uint64)
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def fill(key, shape):
    """float32 array for state-dict entry `key` of `shape` (int64 zeros for counters)."""
    n = int(np.prod(shape)) if len(shape) else 1
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    u = uniform01(key, n)
    if key.endswith("running_mean"):
        v = (2.0 * u - 1.0) * 0.1
    elif key.endswith("running_var"):
        v = u + 0.5
    elif len(shape) == 4:  # conv weight: He-uniform, variance 2 / fan_in
        fan_in = shape[1] * shape[2] * shape[3]
        v = (2.0 * u - 1.0) * math.sqrt(6.0 / fan_in)
    elif len(shape) == 2:  # linear weight
        v = (2.0 * u - 1.0) * (1.0 / math.sqrt(shape[1]))
    elif key.endswith("bn3.weight"):  # a bottleneck's last BN: small, so the residual stream stays tame
        v = (u + 0.5) * 0.2
    elif key.endswith("weight"):  # batch-norm scale
        v = u + 0.5
    else:  # batch-norm shift, linear bias
        v = (2.0 * u - 1.0) * 0.1
    return v.astype(np.float32).reshape(shape)
