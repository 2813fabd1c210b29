"""The depthwise algorithm: a dedicated direct kernel for groups == in_channels (``_kernels.conv_depthwise``)."""
import numpy as np

from .._kernels.conv_depthwise import LAYOUT_AUTO, blocked_weight_size, depthwise_conv2d, pack_blocked_weight


def _as_2d(values, dims, fill):
    return (fill,) * (2 - dims) + tuple(values)


class DepthwiseConv:
    """Depthwise convolution (each output channel filters one input channel, channel multiplier >= 1), 1-D and 2-D.

    Vectorised across the output row, padding and stride resolved once per
    input row; 3x3 and 5x5 with stride 1 or 2 have dedicated row kernels, any
    other kernel size, stride or dilation a generic one.  The epilogue is fused.
    """
    name = "depthwise"

    @staticmethod
    def unsupported(problem):
        if problem.transposed:
            return "it computes convolutions, not transposed ones"
        if not problem.depthwise:
            return (f"it needs groups == in_channels (depthwise), got groups={problem.groups} "
                    f"with {problem.in_channels} input channels")
        if problem.dims == 3:
            return "it computes 1-D and 2-D convolutions only, got a 3-D one"
        return None

    def __init__(self, problem, weight):
        self.problem = problem
        # (C * m, 1, *kernel) -> one row of KH * KW taps per output channel
        self.weight = np.ascontiguousarray(weight.reshape(problem.out_channels, -1))
        # the channel-blocked path's layout of the weights, packed once where that path can serve
        # (multiplier 1, a 3x3 or 5x5 kernel, no dilation; the kernel would pack them per call,
        # serially: 960 channels x 9 taps cost it about as much as the 7x7 convolution on 2 threads)
        self.blocked_weight = np.empty(0, weight.dtype)
        if (problem.out_channels == problem.in_channels and problem.dims == 2
                and problem.kernel_size in ((3, 3), (5, 5)) and problem.dilation == (1, 1)):
            self.blocked_weight = np.empty(blocked_weight_size(*self.weight.shape, self.weight.itemsize), weight.dtype)
            pack_blocked_weight(self.weight, self.blocked_weight)
        dims = problem.dims
        self._geometry = (_as_2d(problem.kernel_size, dims, 1), _as_2d(problem.stride, dims, 1),
                          _as_2d(problem.pad_before, dims, 0), _as_2d(problem.dilation, dims, 1))

    def run(self, input, output, epilogue, residual, num_threads):
        self.bind(input.shape, output.shape, epilogue)(input, output, residual, num_threads)

    def bind(self, input_shape, output_shape, epilogue):
        """run for fixed shapes and epilogue (see _conv_plan)."""
        dims = self.problem.dims
        in_view = tuple(input_shape[:2]) + (1,) * (2 - dims) + tuple(input_shape[2:])
        out_view = tuple(output_shape[:2]) + (1,) * (2 - dims) + tuple(output_shape[2:])
        weight, blocked_weight, geometry = self.weight, self.blocked_weight, self._geometry
        scale, shift, activation, (p0, p1, p2) = epilogue.scale, epilogue.shift, epilogue.activation, epilogue.params

        def call(input, output, residual, num_threads):
            depthwise_conv2d(input.reshape(in_view), weight, output.reshape(out_view), *geometry, LAYOUT_AUTO,
                             blocked_weight,
                             scale, shift, residual, activation, p0, p1, p2, num_threads)
        return call
