"""conv1d / conv2d / conv3d refuse bad arguments with a message naming the op and the argument."""
import numpy as np
import pytest

import pyconv.functional as F

OPS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def arrays(dims, batch=2, in_channels=3, out_channels=4, size=6, kernel=3, groups=1, dtype=np.float32):
    x = np.ones((batch, in_channels) + (size,) * dims, dtype=dtype)
    w = np.ones((out_channels, in_channels // groups) + (kernel,) * dims, dtype=dtype)
    return x, w


# (description, dims, call(op, x, w), error, message pattern)
CASES = [
    ("input ndim", 2, lambda op, x, w: op(x[0, 0], w), ValueError, r"conv2d: expected input to be 3D or 4D"),
    ("input ndim 5", 2, lambda op, x, w: op(x[np.newaxis], w), ValueError, r"input to be 3D or 4D"),
    ("input ndim 1d", 1, lambda op, x, w: op(x[0, 0], w), ValueError, r"conv1d: expected input to be 2D or 3D"),
    ("input ndim 3d", 3, lambda op, x, w: op(x[0, 0], w), ValueError, r"conv3d: expected input to be 4D or 5D"),
    ("weight ndim", 2, lambda op, x, w: op(x, w[0]), ValueError, r"conv2d: expected weight to be 4D"),
    ("weight ndim 1d", 1, lambda op, x, w: op(x, w[..., np.newaxis]), ValueError, r"expected weight to be 3D"),
    ("channels", 2, lambda op, x, w: op(np.ones((2, 4, 6, 6), np.float32), w), ValueError,
     r"conv2d: expected input with 3 channels \(weight\.shape\[1\] \* groups\), got 4"),
    ("channels with groups", 1, lambda op, x, w: op(x, np.ones((4, 3, 3), np.float32), groups=2), ValueError,
     r"conv1d: expected input with 6 channels \(weight\.shape\[1\] \* groups\), got 3"),
    ("channels unbatched", 3, lambda op, x, w: op(x[0, :2], w), ValueError, r"expected input with 3 channels.*got 2"),
    ("out channels vs groups", 2, lambda op, x, w: op(np.ones((1, 3, 5, 5), np.float32),
                                                      np.ones((4, 1, 3, 3), np.float32), groups=3),
     ValueError, r"conv2d: expected out_channels .* divisible by groups \(3\)"),
    ("groups 0", 2, lambda op, x, w: op(x, w, groups=0), ValueError, r"groups to be >= 1, got 0"),
    ("groups negative", 1, lambda op, x, w: op(x, w, groups=-3), ValueError, r"groups to be >= 1, got -3"),
    ("groups float", 2, lambda op, x, w: op(x, w, groups=1.0), TypeError, r"groups"),
    ("kernel too large", 2, lambda op, x, w: op(x, np.ones((4, 3, 7, 3), np.float32)), ValueError,
     r"conv2d: expected the kernel .* to fit the padded input"),
    ("kernel too large with padding", 1, lambda op, x, w: op(x, np.ones((4, 3, 11), np.float32), padding=2),
     ValueError, r"kernel"),
    ("dilated kernel too large", 3, lambda op, x, w: op(x, w, dilation=(1, 3, 1)), ValueError, r"kernel"),
    ("kernel too large, batch 0", 2, lambda op, x, w: op(x[:0], np.ones((4, 3, 7, 7), np.float32)),
     ValueError, r"kernel"),
    ("stride 0", 2, lambda op, x, w: op(x, w, stride=0), ValueError, r"conv2d: expected stride to be >= 1"),
    ("stride tuple 0", 3, lambda op, x, w: op(x, w, stride=(1, 0, 1)), ValueError, r"stride to be >= 1"),
    ("stride length", 2, lambda op, x, w: op(x, w, stride=(1, 1, 1)), ValueError, r"stride"),
    ("stride float", 1, lambda op, x, w: op(x, w, stride=1.5), TypeError, r"stride"),
    ("dilation 0", 2, lambda op, x, w: op(x, w, dilation=0), ValueError, r"dilation to be >= 1"),
    ("dilation negative", 1, lambda op, x, w: op(x, w, dilation=(-1,)), ValueError, r"dilation to be >= 1"),
    ("padding negative", 2, lambda op, x, w: op(x, w, padding=-1), ValueError, r"conv2d: expected padding to be >= 0"),
    ("padding tuple negative", 3, lambda op, x, w: op(x, w, padding=(0, -2, 0)), ValueError, r"padding to be >= 0"),
    ("padding length", 2, lambda op, x, w: op(x, w, padding=(1, 2, 3)), ValueError, r"padding"),
    ("padding string", 2, lambda op, x, w: op(x, w, padding="full"), ValueError,
     r"conv2d: expected padding to be one of 'valid', 'same', got 'full'"),
    ("padding string case", 1, lambda op, x, w: op(x, w, padding="SAME"), ValueError, r"padding"),
    ("padding none", 2, lambda op, x, w: op(x, w, padding=None), TypeError, r"padding"),
    ("same strided", 2, lambda op, x, w: op(x, w, padding="same", stride=2), ValueError,
     r"conv2d: padding='same' is not supported for strided convolutions.*stride"),
    ("same strided tuple", 3, lambda op, x, w: op(x, w, padding="same", stride=(1, 1, 2)), ValueError,
     r"padding='same'.*stride \(1, 1, 2\)"),
    ("bias length", 2, lambda op, x, w: op(x, w, np.ones(3, np.float32)), ValueError,
     r"conv2d: expected bias to be 1D with 4 elements"),
    ("bias 2D", 1, lambda op, x, w: op(x, w, np.ones((4, 1), np.float32)), ValueError, r"bias to be 1D"),
    ("bias scalar", 3, lambda op, x, w: op(x, w, np.float32(1)), ValueError, r"bias"),
    ("int input", 2, lambda op, x, w: op(x.astype(np.int32), w), TypeError, r"conv2d: expected input to be a float"),
    ("bool weight", 2, lambda op, x, w: op(x, w.astype(bool)), TypeError, r"weight"),
    ("complex input", 1, lambda op, x, w: op(x.astype(np.complex64), w), TypeError, r"input"),
    ("float16 weight", 3, lambda op, x, w: op(x, w.astype(np.float16)), TypeError, r"weight"),
    ("int bias", 2, lambda op, x, w: op(x, w, np.ones(4, np.int64)), TypeError, r"bias"),
    ("dtype mismatch", 2, lambda op, x, w: op(x, w.astype(np.float64)), TypeError,
     r"conv2d: expected weight to have the dtype of input \(float32\), got float64"),
    ("bias dtype mismatch", 1, lambda op, x, w: op(x, w, np.ones(4)), TypeError, r"bias to have the dtype of input"),
    ("input None", 2, lambda op, x, w: op(None, w), TypeError, r"input"),
    ("weight string", 2, lambda op, x, w: op(x, "w"), TypeError, r"weight"),
    ("zero out channels", 2, lambda op, x, w: op(x, w[:0]), ValueError, r"weight to have no zero-size dimension"),
    ("zero kernel", 2, lambda op, x, w: op(x, w[:, :, :0]), ValueError, r"weight to have no zero-size dimension"),
    ("zero in channels", 1, lambda op, x, w: op(x[:, :0], w[:, :0]), ValueError, r"weight"),
    ("zero spatial input", 2, lambda op, x, w: op(x[:, :, :0], w, padding=2), ValueError,
     r"conv2d: expected input to have non-zero spatial sizes"),
    ("zero spatial input, batch 0", 3, lambda op, x, w: op(x[:0, :, :, :0], w, padding=2), ValueError,
     r"non-zero spatial"),
]


@pytest.mark.parametrize("dims, call, error, pattern", [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_bad_arguments_are_refused(dims, call, error, pattern):
    x, w = arrays(dims)
    with pytest.raises(error, match=pattern):
        call(OPS[dims], x, w)
