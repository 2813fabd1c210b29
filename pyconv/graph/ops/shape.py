"""Data movement: reshape (a view), permute, expand, cat, cat_shuffle, slice, select, split, pad, pixel and
channel shuffles, upsample."""
import math

import numpy as np

from ... import functional as F
from ..._kernels.layout import concatenate
from ..._threads import kernel_threads
from ._base import Attr, Op, OpError, axis, register


def _resolve(dims, batch):
    from ..ir import resolve_shape
    return resolve_shape([d for d in dims if d != -1], batch), [i for i, d in enumerate(dims) if d == -1]


@register
class Reshape(Op):
    """The input's elements in a new shape (dims int / 'N' / 'k*N', at most one -1); a view, run by the
    executor with the planned shape."""
    name = "reshape"
    attrs = {"shape": Attr("dims")}
    writes_out = False
    view = True

    def infer(self, shapes, attrs, batch, constants):
        known, free = _resolve(attrs["shape"], batch)
        size = math.prod(shapes[0])
        if len(free) > 1:
            raise OpError(f"shape {attrs['shape']} has more than one -1")
        if free:
            rest = math.prod(known)
            if rest == 0 or size % rest:
                raise OpError(f"cannot reshape {shapes[0]} to {attrs['shape']}")
            known = known[:free[0]] + (size // rest,) + known[free[0]:]
        if math.prod(known) != size:
            raise OpError(f"cannot reshape {shapes[0]} ({size} elements) to {known}")
        return [known]


@register
class Permute(Op):
    name = "permute"
    attrs = {"dims": Attr("ints")}

    def infer(self, shapes, attrs, batch, constants):
        x, dims = shapes[0], attrs["dims"]
        if sorted(axis(d, max(len(x), 1)) for d in dims) != list(range(len(x))):
            raise OpError(f"dims {dims} are not a permutation of the {len(x)} dims of {x}")
        return [tuple(x[d] for d in dims)]

    def kernel(self, attrs, constants):
        def permute(inputs, outs):
            np.copyto(outs[0], inputs[0].transpose(attrs["dims"]))
            return outs
        return permute


@register
class Expand(Op):
    """Broadcast to ``shape`` (dims int / 'N' / 'k*N'; -1 keeps the input's size), as torch's expand."""
    name = "expand"
    attrs = {"shape": Attr("dims")}

    def infer(self, shapes, attrs, batch, constants):
        x, dims = shapes[0], attrs["shape"]
        if len(dims) < len(x):
            raise OpError(f"cannot expand {x} to fewer dims {dims}")
        lead = len(dims) - len(x)
        out = []
        for i, d in enumerate(dims):
            if d == -1:
                if i < lead:
                    raise OpError(f"-1 in shape {dims} at a new leading dim")
                out.append(x[i - lead])
            else:
                out.append(_resolve([d], batch)[0][0])
        for i, size in enumerate(x):
            if size != 1 and size != out[i + lead]:
                raise OpError(f"cannot expand {x} to {tuple(out)}")
        return [tuple(out)]

    def kernel(self, attrs, constants):
        def expand(inputs, outs):
            np.copyto(outs[0], np.broadcast_to(inputs[0], outs[0].shape))
            return outs
        return expand


@register
class Cat(Op):
    """Concatenation along ``dim``: rows of the dims before it copied in parallel pieces of at most 32 KiB
    (layout.concatenate) from ROW_BYTES_FOR_TASKS bytes per output row on (DenseNet, GoogLeNet,
    SqueezeNet: 2x numpy's one-thread copy on 2 threads), np.concatenate below."""
    ROW_BYTES_FOR_TASKS = 4096
    name = "cat"
    inputs = ("inputs*",)
    attrs = {"dim": Attr("int")}

    def infer(self, shapes, attrs, batch, constants):
        first = shapes[0]
        dim = axis(attrs["dim"], max(len(first), 1))
        for shape in shapes[1:]:
            if len(shape) != len(first) or any(a != b for i, (a, b) in enumerate(zip(shape, first)) if i != dim):
                raise OpError(f"cannot concatenate {shapes} along dim {attrs['dim']}")
        return [first[:dim] + (sum(s[dim] for s in shapes),) + first[dim + 1:]]

    def kernel(self, attrs, constants):
        def cat(inputs, outs):
            out = outs[0]       # float32, as every input (Op.check_dtypes)
            rows = math.prod(out.shape[:axis(attrs["dim"], out.ndim)])
            if out.size == 0 or out.nbytes < rows * self.ROW_BYTES_FOR_TASKS:   # many short rows: one numpy call
                np.concatenate(inputs, axis=attrs["dim"], out=out)
                return outs
            concatenate([np.ascontiguousarray(x).reshape(rows, -1).view(np.uint8) for x in inputs],
                        out.reshape(rows, -1).view(np.uint8), kernel_threads(out.size))
            return outs
        return cat


@register
class CatShuffle(Op):
    """The concatenation of the inputs along the channels (dim 1), channel-shuffled in ``groups`` (channel
    q * groups + r of the shuffle is channel r * C / groups + q of the concatenation), cut into outputs of
    ``sizes`` channels: ShuffleNet's cat, reshape, transpose, reshape and the next block's split in one
    pass (``fuse_channel_shuffle``), each output channel copied once from its input."""
    name = "cat_shuffle"
    inputs = ("inputs*",)
    attrs = {"groups": Attr("int", min=1), "sizes": Attr("ints")}

    def output_count(self, attrs):
        return len(attrs["sizes"])

    def infer(self, shapes, attrs, batch, constants):
        first = shapes[0]
        if len(first) < 2 or any(len(s) != len(first) or s[:1] + s[2:] != first[:1] + first[2:] for s in shapes):
            raise OpError(f"cannot concatenate {shapes} along dim 1")
        channels = sum(s[1] for s in shapes)
        if channels % attrs["groups"] or any(s < 0 for s in attrs["sizes"]) or sum(attrs["sizes"]) != channels:
            raise OpError(f"{channels} channels do not split in groups of {attrs['groups']} and sizes "
                          f"{attrs['sizes']}")
        return [first[:1] + (size,) + first[2:] for size in attrs["sizes"]]

    def kernel(self, attrs, constants):
        plans, groups = {}, attrs["groups"]

        def cat_shuffle(inputs, outs):
            if any(out.size == 0 for out in outs):
                return outs
            counts = tuple(x.shape[1] for x in inputs)
            plan = plans.get(counts)
            if plan is None:
                plan = plans[counts] = _shuffle_copies(counts, groups, attrs["sizes"])
            for o, i, start, first, count in plan:
                out, x = outs[o], inputs[i]
                np.copyto(out.reshape(out.shape[0], out.shape[1], -1)[:, start:start + groups * count:groups],
                          x.reshape(x.shape[0], x.shape[1], -1)[:, first:first + count])
            return outs
        return cat_shuffle


def _shuffle_copies(counts, groups, sizes):
    """cat_shuffle's copies (output, input, first output channel, first input channel, channels): runs of
    output channels groups apart that come from consecutive channels of one input."""
    per_group = sum(counts) // groups
    owner = [(i, c) for i, count in enumerate(counts) for c in range(count)]   # concatenation channel -> input
    copies, base = [], 0
    for o, size in enumerate(sizes):
        for r in range(groups):
            first = base + (r - base) % groups              # first channel j = r (mod groups) of this output
            run = None
            for j in range(first, base + size, groups):
                i, c = owner[r * per_group + j // groups]
                if run is not None and run[1] == i and run[3] + run[4] == c:
                    run[4] += 1
                else:
                    run = [o, i, j - base, c, 1]
                    copies.append(run)
        base += size
    return [tuple(run) for run in copies]


@register
class Slice(Op):
    """input[start:end:step] along ``dim``, with Python's clipping of start and end."""
    name = "slice"
    attrs = {"dim": Attr("int"), "start": Attr("int"), "end": Attr("int"), "step": Attr("int", min=1)}

    def infer(self, shapes, attrs, batch, constants):
        x = shapes[0]
        dim = axis(attrs["dim"], max(len(x), 1))
        length = len(range(*slice(attrs["start"], attrs["end"], attrs["step"]).indices(x[dim])))
        return [x[:dim] + (length,) + x[dim + 1:]]

    def kernel(self, attrs, constants):
        def slice_(inputs, outs):
            x = inputs[0]
            index = [slice(None)] * x.ndim
            index[attrs["dim"]] = slice(attrs["start"], attrs["end"], attrs["step"])
            np.copyto(outs[0], x[tuple(index)])
            return outs
        return slice_


@register
class Select(Op):
    """input[..., index, ...] along ``dim`` (the dim removed)."""
    name = "select"
    attrs = {"dim": Attr("int"), "index": Attr("int")}

    def infer(self, shapes, attrs, batch, constants):
        x = shapes[0]
        dim = axis(attrs["dim"], max(len(x), 1))
        if not -x[dim] <= attrs["index"] < x[dim]:
            raise OpError(f"index {attrs['index']} is out of range for dim {dim} of {x}")
        return [x[:dim] + x[dim + 1:]]

    def kernel(self, attrs, constants):
        def select(inputs, outs):
            np.copyto(outs[0], np.take(inputs[0], attrs["index"], axis=attrs["dim"]))
            return outs
        return select


@register
class Split(Op):
    """Pieces of ``sizes`` along ``dim`` (the sizes add up to the dim's size)."""
    name = "split"
    attrs = {"dim": Attr("int"), "sizes": Attr("ints")}

    def output_count(self, attrs):
        return len(attrs["sizes"])

    def infer(self, shapes, attrs, batch, constants):
        x = shapes[0]
        dim = axis(attrs["dim"], max(len(x), 1))
        if any(s < 0 for s in attrs["sizes"]) or sum(attrs["sizes"]) != x[dim]:
            raise OpError(f"sizes {attrs['sizes']} do not add up to dim {dim} of {x}")
        return [x[:dim] + (s,) + x[dim + 1:] for s in attrs["sizes"]]

    def kernel(self, attrs, constants):
        bounds = np.cumsum([0] + attrs["sizes"]).tolist()

        def split(inputs, outs):
            x = inputs[0]
            index = [slice(None)] * x.ndim
            for out, start, end in zip(outs, bounds[:-1], bounds[1:]):
                index[attrs["dim"]] = slice(start, end)
                np.copyto(out, x[tuple(index)])
            return outs
        return split


@register
class Pad(Op):
    """F.pad: ``pad`` (before, after) per dim from the last backwards; constant/reflect/replicate/circular."""
    name = "pad"
    attrs = {"pad": Attr("ints"), "mode": Attr("choice", choices=("constant", "reflect", "replicate", "circular")),
             "value": Attr("float")}
    writes_out = False

    def infer(self, shapes, attrs, batch, constants):
        x, pad, mode = list(shapes[0]), attrs["pad"], attrs["mode"]
        k = len(pad) // 2
        if len(pad) % 2 or k > len(x) or mode != "constant" and (k not in (1, 2, 3) or len(x) not in (k + 1, k + 2)):
            raise OpError(f"pad {pad} does not fit input {tuple(x)} in mode {mode!r}")
        for i in range(k):
            d, before, after = len(x) - 1 - i, pad[2 * i], pad[2 * i + 1]
            if mode == "reflect" and (before >= x[d] or after >= x[d]) or mode == "circular" and (
                    before > x[d] or after > x[d]) or mode == "replicate" and x[d] == 0:
                raise OpError(f"pad {pad} is too large for input {tuple(shapes[0])} in mode {mode!r}")
            x[d] += before + after
            if x[d] < 0:
                raise OpError(f"pad {pad} leaves a negative size for input {tuple(shapes[0])}")
        return [tuple(x)]

    def kernel(self, attrs, constants):
        value = attrs["value"] if attrs["mode"] == "constant" else None
        return lambda inputs, outs: (F.pad(inputs[0], tuple(attrs["pad"]), attrs["mode"], value),)


@register
class PixelShuffle(Op):
    """(*, C r^2, H, W) -> (*, C, H r, W r) (``inverse``: the other way)."""
    name = "pixel_shuffle"
    attrs = {"factor": Attr("int", min=1), "inverse": Attr("bool")}
    writes_out = False

    def infer(self, shapes, attrs, batch, constants):
        x, r = shapes[0], attrs["factor"]
        if len(x) < 3:
            raise OpError(f"expected input (*, C, H, W), got {x}")
        *lead, c, h, w = x
        if attrs["inverse"]:
            if h % r or w % r:
                raise OpError(f"height and width of {x} must be divisible by {r}")
            return [(*lead, c * r * r, h // r, w // r)]
        if c % (r * r):
            raise OpError(f"channels of {x} must be divisible by {r * r}")
        return [(*lead, c // (r * r), h * r, w * r)]

    def kernel(self, attrs, constants):
        function = F.pixel_unshuffle if attrs["inverse"] else F.pixel_shuffle
        return lambda inputs, outs: (function(inputs[0], attrs["factor"]),)


@register
class ChannelShuffle(Op):
    name = "channel_shuffle"
    attrs = {"groups": Attr("int", min=1)}
    writes_out = False

    def infer(self, shapes, attrs, batch, constants):
        x = shapes[0]
        if len(x) < 3 or x[1] % attrs["groups"]:
            raise OpError(f"expected input (N, C, *) with C divisible by groups={attrs['groups']}, got {x}")
        return [x]

    def kernel(self, attrs, constants):
        return lambda inputs, outs: (F.channel_shuffle(inputs[0], attrs["groups"]),)


@register
class Upsample(Op):
    """F.interpolate with either ``size`` or ``scale_factor`` (output floor(in * scale), coordinates 1 / scale)."""
    name = "upsample"
    attrs = {"mode": Attr("choice", choices=("nearest", "nearest-exact", "linear", "bilinear", "bicubic",
                                             "trilinear")),
             "size": Attr("ints", optional=True), "scale_factor": Attr("floats", optional=True),
             "align_corners": Attr("bool", optional=True)}
    writes_out = False

    def infer(self, shapes, attrs, batch, constants):
        x = shapes[0]
        n = len(x) - 2
        size, scale = attrs["size"], attrs["scale_factor"]
        if n not in (1, 2, 3) or (size is None) == (scale is None) or len(size or scale) != n:
            raise OpError(f"expected an input (N, C, *spatial) and one of size and scale_factor with an entry "
                          f"per spatial dim, got {x}, size={size}, scale_factor={scale}")
        if size is None:
            if any(s <= 0 for s in scale):
                raise OpError(f"expected scale_factor > 0, got {scale}")
            size = [math.floor(i * s) for i, s in zip(x[2:], scale)]
        if any(s <= 0 or s > 2 ** 31 for s in size) or 0 in x[1:]:
            raise OpError(f"cannot resize {x} to {size}")
        return [x[:2] + tuple(size)]

    def kernel(self, attrs, constants):
        size = None if attrs["size"] is None else tuple(attrs["size"])
        scale = None if attrs["scale_factor"] is None else tuple(attrs["scale_factor"])
        return lambda inputs, outs: (F.interpolate(inputs[0], size, scale, attrs["mode"], attrs["align_corners"]),)
