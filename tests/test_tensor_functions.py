"""pyconv's top-level tensor functions (pyconv.tensor) against their torch namesakes."""
import numpy as np
import pytest

import pyconv
from tolerances import assert_close

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 5, 3, 4)).astype(np.float32)


def to_torch(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, (list, tuple)):
        return type(value)(to_torch(v) for v in value)
    return value


def assert_same(actual, expected):
    """Same values, shape and dtype as torch's result (tuples element-wise)."""
    if isinstance(expected, (tuple, list)):
        assert isinstance(actual, tuple) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same(a, e)
        return
    assert isinstance(actual, np.ndarray), type(actual)
    expected = expected.numpy()
    if expected.dtype.kind == "f":
        assert_close(actual, expected)
    else:
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_array_equal(actual, expected)


def compare(name, *args, **kwargs):
    expected = getattr(torch, name)(*to_torch(args), **kwargs)
    assert_same(getattr(pyconv, name)(*args, **kwargs), expected)


A = RNG.standard_normal((2, 3, 4)).astype(np.float32)
B = RNG.standard_normal((2, 1, 4)).astype(np.float32)
I64 = RNG.integers(-5, 5, (2, 3, 4))


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_cat(dim):
    other = RNG.standard_normal(tuple(7 if d == dim % 3 else s for d, s in enumerate(A.shape))).astype(np.float32)
    compare("cat", [A, other, A], dim)
    compare("cat", (A, other), dim=dim)


def test_cat_promotes_like_torch():
    compare("cat", [A, A.astype(np.float64)], 1)
    compare("cat", [I64, A], 0)  # int64 with float32: float32 (numpy alone would give float64)
    compare("cat", [I64, I64.astype(np.int8)], 2)
    assert pyconv.concat is pyconv.cat


@pytest.mark.parametrize("dim", [0, 1, 3, -1, -4])
def test_stack(dim):
    compare("stack", [A, A * 2, A + 1], dim)
    compare("stack", (A,), dim=dim)


@pytest.mark.parametrize("start_dim, end_dim", [(0, -1), (1, -1), (1, 2), (-2, -1), (2, 2)])
def test_flatten(start_dim, end_dim):
    compare("flatten", X, start_dim, end_dim)
    compare("flatten", X, start_dim=start_dim, end_dim=end_dim)
    compare("flatten", np.array(3.0, np.float32))


@pytest.mark.parametrize("shape", [(10, 12), (-1,), (2, -1, 4), (4, 3, 2, 5), (120,)])
def test_reshape(shape):
    compare("reshape", X, shape)
    compare("reshape", X.transpose(2, 0, 3, 1), shape)  # non-contiguous input


def test_reshape_views_when_torch_does():
    assert np.shares_memory(pyconv.reshape(X, (10, 12)), X)


@pytest.mark.parametrize("dims", [(0, 1, 2, 3), (3, 2, 1, 0), (0, 2, 3, 1), (-1, 0, -2, 1)])
def test_permute(dims):
    compare("permute", X, dims)


@pytest.mark.parametrize("dim0, dim1", [(0, 1), (1, 2), (-1, 0), (2, 2)])
def test_transpose(dim0, dim1):
    compare("transpose", X, dim0, dim1)
    out = pyconv.transpose(X, dim0, dim1)
    assert np.shares_memory(out, X)


@pytest.mark.parametrize("size, chunks", [(5, 4), (6, 4), (6, 3), (7, 2), (3, 5), (0, 3), (1, 1)])
@pytest.mark.parametrize("dim", [1, -1])
def test_chunk(size, chunks, dim):
    x = RNG.standard_normal((2, size, size)).astype(np.float32)
    compare("chunk", x, chunks, dim)
    compare("chunk", x, chunks, dim=dim)


@pytest.mark.parametrize("sections", [2, 3, 7, 10, [2, 3, 2], (0, 7), [7]])
def test_split(sections):
    x = RNG.standard_normal((3, 7)).astype(np.float32)
    compare("split", x, sections, 1)
    compare("split", x.T, sections, dim=0)
    compare("split", np.zeros((0, 2), np.float32), 2)


@pytest.mark.parametrize("other", [B, A.astype(np.float64), 2.5, 3, np.array(1.5), I64])
@pytest.mark.parametrize("alpha", [1, 2, 0.5])
def test_add(other, alpha):
    compare("add", A, other, alpha=alpha)


@pytest.mark.parametrize("other", [B, A.astype(np.float64), 2.5, 3, np.array(1.5), I64, True])
def test_mul(other):
    compare("mul", A, other)
    compare("mul", I64, other)


def test_add_and_mul_with_integers_like_torch():
    compare("add", I64, I64, alpha=3)
    compare("add", I64, 2.5)  # int64 + Python float: float32 (torch's default dtype)
    compare("mul", I64.astype(np.int32), np.array(3))  # a 0-d array does not promote
    with pytest.raises(TypeError, match="alpha must not be a floating point number"):
        pyconv.add(I64, I64, alpha=0.5)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("x", [A, A.astype(np.float64), I64, A[:, ::2, ::-1]], ids=["f32", "f64", "i64", "strided"])
def test_pointwise(name, x):
    compare(name, x)


@pytest.mark.parametrize("dim", [None, 0, -1, (1, 2), [0, 3], (), []])
@pytest.mark.parametrize("keepdim", [False, True])
def test_mean(dim, keepdim):
    if dim is None:
        compare("mean", X)
    else:
        compare("mean", X, dim, keepdim)
        compare("mean", X, dim=dim, keepdim=keepdim)


def test_mean_dtype_and_integers():
    # dtype= takes numpy dtypes where torch takes torch dtypes
    assert_same(pyconv.mean(X, 1, dtype=np.float64), torch.mean(torch.from_numpy(X), 1, dtype=torch.float64))
    assert_same(pyconv.mean(I64, 1, dtype=np.float32), torch.mean(torch.from_numpy(I64), 1, dtype=torch.float32))
    with pytest.raises(TypeError, match="floating point"):
        pyconv.mean(I64)
    with pytest.raises(ValueError, match="appears multiple times"):
        pyconv.mean(X, (1, -3))
    assert np.isnan(pyconv.mean(np.zeros((0, 3), np.float32), 0)).all()


@pytest.mark.parametrize("dim", [(), 0, -1, (1, 2), [0, 3]])
@pytest.mark.parametrize("keepdim", [False, True])
def test_amax(dim, keepdim):
    compare("amax", X, dim, keepdim)
    compare("amax", I64, dim if isinstance(dim, int) or len(dim) < 2 or max(dim) < 3 else 1, keepdim=keepdim)


def test_amax_propagates_nan_and_refuses_empty_reductions():
    x = X.copy()
    x[0, 1, 2, 3] = np.nan
    compare("amax", x, 1)
    with pytest.raises(ValueError, match="non-zero size"):
        pyconv.amax(np.zeros((0, 3), np.float32), 0)
    compare("amax", np.zeros((0, 3), np.float32), 1)


@pytest.mark.parametrize("low, high", [(-0.5, 0.5), (None, 0.2), (-0.1, None), (1.0, -1.0), (0, 1)])
def test_clamp(low, high):
    x = X.copy()
    x[0, 0, 0, 0] = np.nan
    compare("clamp", x, low, high)
    compare("clamp", x, min=low, max=high)
    compare("clamp", I64, low, high)


def test_clamp_with_array_bounds():
    low = RNG.standard_normal((4,)).astype(np.float32) - 1
    compare("clamp", X, low, low + 1.0)
    assert pyconv.clip is pyconv.clamp


@pytest.mark.parametrize("call, error, message", [
    (lambda: pyconv.cat([]), ValueError, "non-empty"),
    (lambda: pyconv.cat(A), TypeError, "list or tuple"),
    (lambda: pyconv.cat([A, B], 0), ValueError, "must match except in dimension 0"),
    (lambda: pyconv.cat([A, A[0]], 0), ValueError, "to have 3 dims"),
    (lambda: pyconv.cat([A], 3), IndexError, r"dim out of range"),
    (lambda: pyconv.cat([np.array(1, np.float32)]), ValueError, "zero-dimensional"),
    (lambda: pyconv.stack([A, B]), ValueError, "equal size"),
    (lambda: pyconv.stack([A], 4), IndexError, "dim out of range"),
    (lambda: pyconv.chunk(A, 0), ValueError, "greater than 0"),
    (lambda: pyconv.chunk(np.array(1, np.float32), 2), ValueError, "1-dimensional"),
    (lambda: pyconv.split(A, 0, 1), ValueError, "split_size can only be 0"),
    (lambda: pyconv.split(A, -1, 1), ValueError, "non-negative"),
    (lambda: pyconv.split(A, [1, 1], 1), ValueError, "sum exactly to 3"),
    (lambda: pyconv.split(A, 1.5, 1), TypeError, "int"),
    (lambda: pyconv.reshape(A, (5, -1)), ValueError, "is invalid for input of size 24"),
    (lambda: pyconv.reshape(A, (-1, -1)), ValueError, "only one dimension can be inferred"),
    (lambda: pyconv.permute(A, (0, 1)), ValueError, "number of dims"),
    (lambda: pyconv.permute(A, (0, 1, 1)), ValueError, "duplicate dims"),
    (lambda: pyconv.transpose(A, 0, 3), IndexError, "dim1 out of range"),
    (lambda: pyconv.flatten(A, 2, 1), ValueError, "start_dim"),
    (lambda: pyconv.mean(A, 3), IndexError, "dim out of range"),
    (lambda: pyconv.clamp(A), ValueError, "at least one of 'min' or 'max'"),
    (lambda: pyconv.relu(A > 0), TypeError, "bool"),
    (lambda: pyconv.add(A, "x"), TypeError, "numpy arrays or numbers"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
