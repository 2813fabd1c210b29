"""Convolution layers as in torch.nn: Conv1d/2d/3d and ConvTranspose1d/2d/3d."""

import numpy as np

from .. import functional as F
from . import init
from ._utils import _reverse_repeat_tuple, factory_dtype, int_tuple, positive_int
from .module import Module
from .parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared constructor, initialisation, prepared weights and repr of the convolution layers."""

    _dims = 0
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding, groups,
                 bias, padding_mode, device, dtype):
        super().__init__()
        name, n = type(self).__name__, self._dims
        dtype = factory_dtype(name, device, dtype)
        in_channels = positive_int(in_channels, "in_channels", name)
        out_channels = positive_int(out_channels, "out_channels", name)
        groups = positive_int(groups, "groups", name)
        if in_channels % groups != 0:
            raise ValueError(f"{name}: in_channels must be divisible by groups, got in_channels={in_channels}, "
                             f"groups={groups}")
        if out_channels % groups != 0:
            raise ValueError(f"{name}: out_channels must be divisible by groups, got out_channels={out_channels}, "
                             f"groups={groups}")
        kernel_size = int_tuple(kernel_size, n, "kernel_size", name, 1)
        stride = int_tuple(stride, n, "stride", name, 1)
        dilation = int_tuple(dilation, n, "dilation", name, 1)
        if isinstance(padding, str):
            if self._transposed:
                raise ValueError(f"{name}: expected padding to be an int or a tuple of {n} ints, got {padding!r}")
            if padding not in ("valid", "same"):
                raise ValueError(f"{name}: Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(
                    f"{name}: padding='same' is not supported for strided convolutions, got stride {stride}")
            reversed_padding = [0, 0] * n
            if padding == "same":
                for d, k, i in zip(dilation, kernel_size, range(n - 1, -1, -1)):
                    total = d * (k - 1)
                    reversed_padding[2 * i] = total // 2
                    reversed_padding[2 * i + 1] = total - total // 2
        else:
            padding = int_tuple(padding, n, "padding", name, 0)
            reversed_padding = list(_reverse_repeat_tuple(padding, 2))
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {set(_PADDING_MODES)}, but got "
                             f"padding_mode={padding_mode!r}")
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {name}')
        output_padding = int_tuple(output_padding, n, "output_padding", name, 0)

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = self._transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = reversed_padding
        if self._transposed:
            shape = (in_channels, out_channels // groups) + kernel_size
        else:
            shape = (out_channels, in_channels // groups) + kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        """torch's initialisation: kaiming-uniform weight (a = sqrt(5)), U(+-1/sqrt(fan_in)) bias."""
        init.reset_weight_and_bias(self.weight, self.bias)
        self._reset_prepared()

    def _weight_and_bias(self):
        """(weight, bias) as plain C-contiguous arrays, for prepack_conv."""
        bias = None if self.bias is None else np.ascontiguousarray(self.bias)
        return np.ascontiguousarray(self.weight), bias

    def extra_repr(self):
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.padding):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)


class _Conv(_ConvNd):

    def _prepare(self):
        """The convolution with its weights packed once (F.prepack_conv)."""
        padding = self.padding if self.padding_mode == "zeros" else 0
        return F.prepack_conv(*self._weight_and_bias(), self.stride, padding, self.dilation, self.groups)

    def forward(self, input):
        conv = self._get_prepared()
        if self.padding_mode != "zeros":
            # as torch: pad with the mode first, then convolve without padding
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
        return conv(input)


class Conv1d(_Conv):
    """1-D convolution over (N, C, L) or (C, L) input, as torch.nn.Conv1d."""

    _dims = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0, groups, bias,
                         padding_mode, device, dtype)


class Conv2d(_Conv):
    """2-D convolution over (N, C, H, W) or (C, H, W) input, as torch.nn.Conv2d."""

    _dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0, groups, bias,
                         padding_mode, device, dtype)


class Conv3d(_Conv):
    """3-D convolution over (N, C, D, H, W) or (C, D, H, W) input, as torch.nn.Conv3d."""

    _dims = 3

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0, groups, bias,
                         padding_mode, device, dtype)


class _ConvTranspose(_ConvNd):
    _transposed = True

    def _output_padding(self, input, output_size):
        """The output_padding giving ``output_size`` (torch's rule), or the layer's own when it is None."""
        if output_size is None:
            return self.output_padding
        n = self._dims
        ndim = np.ndim(input)
        shape = np.shape(input)
        non_spatial = 2 if ndim == n + 2 else 1
        output_size = [int(s) for s in output_size]
        if len(output_size) == non_spatial + n:
            output_size = output_size[non_spatial:]
        if len(output_size) != n:
            raise ValueError(f"ConvTranspose{n}D: for {ndim}D input, output_size must have {n} or "
                             f"{non_spatial + n} elements (got {len(output_size)})")
        min_sizes, max_sizes = [], []
        for d in range(n):
            size = ((shape[d + non_spatial] - 1) * self.stride[d] - 2 * self.padding[d]
                    + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            min_sizes.append(size)
            max_sizes.append(size + self.stride[d] - 1)
        for size, low, high in zip(output_size, min_sizes, max_sizes):
            if size < low or size > high:
                raise ValueError(f"{type(self).__name__}: requested an output size of {output_size}, but valid sizes "
                                 f"range from {min_sizes} to {max_sizes} (for an input of {tuple(shape[non_spatial:])})")
        return tuple(s - low for s, low in zip(output_size, min_sizes))

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        packed = self._get_prepared()  # output_padding -> the prepacked convolution
        conv = packed.get(output_padding)
        if conv is None:
            conv = packed[output_padding] = F.prepack_conv(
                *self._weight_and_bias(), self.stride, self.padding, self.dilation, self.groups, transposed=True,
                output_padding=output_padding)
        return conv(input)

    def _prepare(self):
        """Prepacked convolutions by output_padding (forward's output_size may change it), built on use."""
        return {}


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution, as torch.nn.ConvTranspose1d; forward(input, output_size=None)."""

    _dims = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding, groups,
                         bias, padding_mode, device, dtype)


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution, as torch.nn.ConvTranspose2d; forward(input, output_size=None)."""

    _dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding, groups,
                         bias, padding_mode, device, dtype)


class ConvTranspose3d(_ConvTranspose):
    """3-D transposed convolution, as torch.nn.ConvTranspose3d; forward(input, output_size=None)."""

    _dims = 3

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, output_padding, groups,
                         bias, padding_mode, device, dtype)
