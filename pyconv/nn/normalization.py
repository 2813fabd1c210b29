"""Normalisation layers as in torch.nn: BatchNorm1d/2d/3d, GroupNorm, LayerNorm."""
import math
import numbers

import numpy as np

from .. import functional as F
from ._utils import factory_dtype, positive_int
from .module import Module
from .parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "LayerNorm"]


class _BatchNorm(Module):
    """Batch normalisation over channel dim 1, as torch's _BatchNorm (state dict version 2).

    With running statistics (track_running_stats=True, the default) pyconv
    normalises by them, which is torch's eval mode; training mode (batch
    statistics, running-stat updates) is refused. Without running statistics
    both modes normalise by the batch's own statistics, as torch does.
    """

    _version = 2
    _input_ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        name = type(self).__name__
        dtype = factory_dtype(name, device, dtype)
        self.num_features = positive_int(num_features, "num_features", name)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """running_mean = 0, running_var = 1, num_batches_tracked = 0."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0
        self._reset_prepared()

    def reset_parameters(self):
        """Running statistics reset; weight = 1, bias = 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight[...] = 1
            if self.bias is not None:
                self.bias[...] = 0

    def _check_input_dim(self, input):
        ndim = np.ndim(input)
        if ndim not in self._input_ndims:
            expected = " or ".join(f"{n}D" for n in self._input_ndims)
            raise ValueError(f"{type(self).__name__}: expected {expected} input (got {ndim}D input)")

    def forward(self, input):
        self._check_input_dim(input)
        if self.running_mean is None or self.running_var is None:
            return self._batch_statistics_norm(input)
        if self.training and self.track_running_stats:
            raise RuntimeError(
                f"{type(self).__name__} in training mode normalises by batch statistics and updates "
                "running_mean/running_var; pyconv runs inference only: call .eval() on the model first "
                "(model.eval(), as for inference in torch)")
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias, False,
                            0.0 if self.momentum is None else self.momentum, self.eps)

    def _batch_statistics_norm(self, input):
        """Normalise by the batch's own per-channel mean and biased variance (torch's behaviour without
        running statistics): group_norm with one group per channel over (C, N * spatial)."""
        x = np.asarray(input)
        values_per_channel = math.prod(x.shape) // x.shape[1] if x.shape[1] else 0
        if values_per_channel <= 1:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel when normalising by "
                             f"batch statistics, got input of shape {x.shape}")
        channels = x.shape[1]
        per_channel = np.moveaxis(x, 1, 0).reshape(1, channels, -1)
        normalised = F.group_norm(per_channel, channels, self.weight, self.bias, self.eps)
        moved = normalised.reshape((channels, x.shape[0]) + x.shape[2:])
        return np.ascontiguousarray(np.moveaxis(moved, 0, 1))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # As torch: state dicts older than version 2 (or with no version, e.g. a plain dict of arrays
        # from .npz or .safetensors) may lack num_batches_tracked; it then defaults to the current value.
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and self.track_running_stats:
            key = prefix + "num_batches_tracked"
            if key not in state_dict:
                state_dict[key] = (self.num_batches_tracked if self.num_batches_tracked is not None
                                   else np.array(0, dtype=np.int64))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self):
        return ("{num_features}, eps={eps}, momentum={momentum}, affine={affine}, bias={use_bias}, "
                "track_running_stats={track_running_stats}".format(**self.__dict__, use_bias=self.bias is not None))


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input, as torch.nn.BatchNorm1d."""
    _input_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input, as torch.nn.BatchNorm2d."""
    _input_ndims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) input, as torch.nn.BatchNorm3d."""
    _input_ndims = (5,)


def _register_affine(module, affine, bias, shape, dtype):
    """weight = ones(shape) and bias = zeros(shape) when ``affine`` (bias only if ``bias``), else None."""
    module.register_parameter("weight", Parameter(np.ones(shape, dtype=dtype)) if affine else None)
    module.register_parameter("bias", Parameter(np.zeros(shape, dtype=dtype)) if affine and bias else None)


def _reset_affine(module):
    """weight = 1, bias = 0 where they exist; prepared weights are rebuilt."""
    if module.weight is not None:
        module.weight[...] = 1
    if module.bias is not None:
        module.bias[...] = 0
    module._reset_prepared()


class GroupNorm(Module):
    """Group normalisation of (N, C, *) input, as torch.nn.GroupNorm."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        dtype = factory_dtype("GroupNorm", device, dtype)
        num_groups = positive_int(num_groups, "num_groups", "GroupNorm")
        num_channels = positive_int(num_channels, "num_channels", "GroupNorm")
        if num_channels % num_groups != 0:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _register_affine(self, affine, bias, num_channels, dtype)

    def reset_parameters(self):
        """weight = 1, bias = 0."""
        _reset_affine(self)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return "{num_groups}, {num_channels}, eps={eps}, affine={affine}, bias={use_bias}".format(
            **self.__dict__, use_bias=self.bias is not None)


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` dims, as torch.nn.LayerNorm."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        dtype = factory_dtype("LayerNorm", device, dtype)
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(positive_int(n, "normalized_shape", "LayerNorm", 0) for n in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _register_affine(self, elementwise_affine, bias, self.normalized_shape, dtype)

    def reset_parameters(self):
        """weight = 1, bias = 0."""
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return "{normalized_shape}, eps={eps}, elementwise_affine={elementwise_affine}, bias={use_bias}".format(
            **self.__dict__, use_bias=self.bias is not None)
