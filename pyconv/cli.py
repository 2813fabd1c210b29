"""The ``pyconv`` command: export, run, summarise and time .pyconv models.

    pyconv export MODULE:FACTORY --input-shape 1,3,224,224 -o m.pyconv   (needs torch)
    pyconv run m.pyconv --input x.npy [-o y.npy] [--top 5] [--outputs layer1.0.conv1 ...]
    pyconv summary m.pyconv [--batch 8]
    pyconv bench m.pyconv [--batch 1,8] [--threads 1,2] [--repeat 10] [--autotune] [--chart out.png]
                 [--compare torch,onnxruntime --factory MODULE:FACTORY]
    pyconv featuremaps m.pyconv img.png --layer layer1.0.conv1 -o maps.png
    pyconv demo                    (a digit classifier trained with torch, run without it)

Inputs are .npy arrays, or images (.png, .jpg; needs Pillow) scaled to [0, 1] at the model's input size.

Bad arguments and files give a one-line message on stderr and exit status 2, never a traceback.
"""
import argparse
import contextlib
import importlib.util
import math
import os
import sys

import numpy as np

from .graph.autotune import median_seconds

__all__ = ["main"]


class _Failure(Exception):
    """An error to report as one line (exit status 2)."""


def _ints(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _positive(text):
    values = _ints(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one positive integer, got {text!r}")
    return values[0]


ENGINES = ("torch", "onnxruntime")


def _engines(text):
    engines = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if not engines or unknown:
        raise argparse.ArgumentTypeError(f"expected engines from {', '.join(ENGINES)}, got {text!r}")
    return list(dict.fromkeys(engines))


def _parser():
    parser = argparse.ArgumentParser(prog="pyconv", description="Export, run and time CNNs on the CPU, "
                                     "without torch at run time.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export = commands.add_parser("export", help="capture a torch model into a .pyconv file (needs torch)")
    export.add_argument("factory", metavar="MODULE:FACTORY",
                        help="a function returning the torch model, e.g. torchvision.models:resnet18")
    export.add_argument("--input-shape", type=_ints, required=True, metavar="N,C,H,W",
                        help="shape of the example input (the batch size stays free)")
    export.add_argument("-o", "--output", required=True, help="the .pyconv file to write")
    export.add_argument("--static-batch", action="store_true", help="export for the example's batch size only")

    run = commands.add_parser("run", help="run a model on an input array (.npy)")
    run.add_argument("model", help="a .pyconv file")
    run.add_argument("--input", required=True, action="append", metavar="X.npy|IMAGE",
                     help="input array (float, NCHW) or image; repeat for models with several inputs")
    run.add_argument("-o", "--output", help="write the (first) output to this .npy file")
    run.add_argument("--top", type=int, default=5, metavar="K", help="classes to print for a classifier")
    run.add_argument("--outputs", nargs="+", metavar="NAME",
                     help="module paths (or value names) whose values to compute instead; with -o, an .npz")

    summary = commands.add_parser("summary", help="print the model's table of nodes")
    summary.add_argument("model", help="a .pyconv file")
    summary.add_argument("--batch", type=int, default=1, help="batch size for shapes and MACs")

    bench = commands.add_parser("bench", help="time the model at some batch sizes and thread counts")
    bench.add_argument("model", help="a .pyconv file")
    bench.add_argument("--batch", type=_ints, default=[1], metavar="B,...", help="batch sizes (default 1)")
    bench.add_argument("--threads", type=_ints, default=None, metavar="T,...",
                       help="thread counts (default: the current one)")
    bench.add_argument("--repeat", type=_positive, default=10, metavar="R",
                       help="timed runs per configuration (median shown; default 10)")
    bench.add_argument("--autotune", action="store_true", help="load the model with autotune=True")
    bench.add_argument("--compare", type=_engines, default=[], metavar="ENGINE,...",
                       help="also time the torch model in torch eager and/or ONNX Runtime (torch,onnxruntime; "
                            "each in a child process), given by --factory")
    bench.add_argument("--factory", metavar="MODULE:FACTORY",
                       help="with --compare: the function returning the torch model the file was exported from "
                            "(as in pyconv export)")
    bench.add_argument("--chart", metavar="OUT.png", help="also draw images/s per configuration and engine as a PNG "
                       "(needs matplotlib: pip install 'pyconv[plot]')")

    maps = commands.add_parser("featuremaps", help="draw the channels of a layer's output as a PNG grid")
    maps.add_argument("model", help="a .pyconv file")
    maps.add_argument("input", metavar="X.npy|IMAGE", help="the (single) input")
    maps.add_argument("--layer", required=True, help="torch module path (or value name) of the layer")
    maps.add_argument("-o", "--output", required=True, help="the PNG file to write")
    maps.add_argument("--sample", type=int, default=0, help="which batch item to draw")

    commands.add_parser("demo", help="classify 400 held-out digits with a shipped model, without torch")
    return parser


def main(argv=None):
    """Run the command line ``argv`` (default sys.argv[1:]); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        commands = {"export": _export, "run": _run, "summary": _summary, "bench": _bench, "demo": _demo,
                    "featuremaps": _featuremaps}
        return commands[args.command](args) or 0
    except _Failure as error:
        message = str(error)
    except (ValueError, TypeError, OSError, ImportError) as error:
        message = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
    except KeyboardInterrupt:
        return 130
    print(f"pyconv {args.command}: error: {message}", file=sys.stderr)
    return 2


def _load(path):
    import pyconv
    if not os.path.isfile(path):
        raise _Failure(f"no such file: {path}")
    return pyconv.load(path)


def _export(args):
    from .export import export_factory
    try:
        export_factory(args.factory, args.input_shape, args.output, dynamic_batch=not args.static_batch)
    except ModuleNotFoundError as error:
        if error.name == "torch":
            raise _Failure("export needs torch (pip install torch)") from None
        raise
    except ValueError as error:  # ExportError and bad arguments, already phrased for the user
        raise _Failure(str(error).removeprefix("export: ")) from None
    print(f"wrote {args.output} ({os.path.getsize(args.output):,} bytes)")


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise _Failure("images need Pillow (pip install pillow); or pass a .npy array") from None
    return Image


def _input(path, value):
    """The array in ``path`` (.npy) or the image there, for graph input ``value``."""
    if path.lower().endswith(_IMAGE_SUFFIXES):
        return _image(path, value)
    if not path.endswith(".npy"):
        raise _Failure(f"expected an input array (.npy) or an image ({', '.join(_IMAGE_SUFFIXES)}), got {path!r}")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise _Failure(f"cannot read {path}: {error}") from None


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _image(path, value):
    """An image as a (1, C, H, W) float32 array in [0, 1], converted to the input's channels and size."""
    shape = value.shape
    if len(shape) != 4 or shape[1] not in (1, 3) or not all(isinstance(d, int) for d in shape[2:]):
        shown = "(" + ", ".join(map(str, shape)) + ")"
        raise _Failure(f"input {value.name!r} of shape {shown} does not take an image; pass a .npy array")
    Image = _pillow()
    try:
        with Image.open(path) as image:
            image = image.convert("L" if shape[1] == 1 else "RGB").resize((shape[3], shape[2]))
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except OSError as error:
        raise _Failure(f"cannot read the image {path}: {error}") from None
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return pixels[None]


def _run(args):
    model = _load(args.model)
    if len(args.input) != len(model.graph.inputs):
        raise _Failure(f"the model takes {len(model.graph.inputs)} input(s) "
                       f"({', '.join(model.input_names)}), got {len(args.input)} --input")
    inputs = [_input(path, value) for path, value in zip(args.input, model.graph.inputs)]
    if args.outputs:
        values = model(*inputs, outputs=args.outputs)
        for name, value in values.items():
            print(f"{name}: {value.shape}, min {value.min():.4g}, max {value.max():.4g}")
        if args.output:
            np.savez(args.output, **values)
        return
    outputs = model(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    for name, value in zip(model.output_names, outputs):
        print(f"{name}: {value.shape}")
    first = outputs[0]
    if first.ndim == 2 and args.top > 0:
        shifted = np.exp(first - first.max(axis=1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=1, keepdims=True)
        for sample, row in enumerate(probabilities):
            top = np.argsort(-row, kind="stable")[:args.top]
            print(f"sample {sample}: " + ", ".join(f"class {c} ({row[c]:.3f})" for c in top))
    if args.output:
        np.save(args.output, first)


def _summary(args):
    print(_load(args.model).summary(batch=args.batch))


def _featuremaps(args):
    model = _load(args.model)
    if len(model.graph.inputs) != 1:
        raise _Failure(f"featuremaps takes models with one input, this one has {len(model.graph.inputs)}")
    x = _input(args.input, model.graph.inputs[0])
    maps = model(x, outputs=[args.layer])[args.layer]
    if maps.ndim != 4:
        raise _Failure(f"{args.layer!r} gives shape {maps.shape}, not feature maps (N, C, H, W)")
    if not 0 <= args.sample < maps.shape[0]:
        raise _Failure(f"--sample {args.sample} is not in the batch of {maps.shape[0]}")
    grid = feature_grid(maps[args.sample])
    _pillow().fromarray(grid).save(args.output, format="PNG")
    print(f"wrote {args.output}: {maps.shape[1]} channels of {args.layer!r}, each {maps.shape[2]}x{maps.shape[3]}")


def feature_grid(maps, min_side=48):
    """(C, H, W) maps as a uint8 grey image: a near-square grid, each map scaled to 0..255 on its own and
    enlarged by a whole factor to at least ``min_side`` pixels, separated by 2-pixel lines."""
    channels, height, width = maps.shape
    columns = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / columns)
    zoom = max(1, math.ceil(min_side / max(height, width)))
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0.0)
    tiles = (scaled * 255).round().astype(np.uint8).repeat(zoom, axis=1).repeat(zoom, axis=2)
    tile_h, tile_w, gap = height * zoom, width * zoom, 2
    grid = np.full((rows * (tile_h + gap) - gap, columns * (tile_w + gap) - gap), 128, np.uint8)
    for index, tile in enumerate(tiles):
        top, left = (index // columns) * (tile_h + gap), (index % columns) * (tile_w + gap)
        grid[top:top + tile_h, left:left + tile_w] = tile
    return grid


def _demo(args):
    from .demo import run
    run()


def _bench(args):
    import pyconv
    from tabulate import tabulate
    from tqdm import tqdm

    from .graph.ir import resolve_shape
    _check_bench_arguments(args)
    if not os.path.isfile(args.model):
        raise _Failure(f"no such file: {args.model}")
    model = pyconv.load(args.model, autotune=args.autotune)
    threads = args.threads or [pyconv.get_num_threads()]
    configurations = [(b, t) for b in args.batch for t in threads]
    shapes = {b: [resolve_shape(v.shape, b) for v in model.graph.inputs] for b in args.batch}
    repeat = args.repeat
    engines = ["pyconv"] + args.compare
    seconds = {}
    with contextlib.ExitStack() as stack:
        torch_child = stack.enter_context(_torch_process(args, model)) if args.compare else None
        progress = stack.enter_context(tqdm(total=len(configurations) * len(engines), desc="bench", unit="run",
                                            file=sys.stderr))
        if torch_child is not None:
            seconds.update(_other_engines(args, torch_child, configurations, shapes, repeat, progress))
        before = pyconv.get_num_threads()
        try:
            for batch, count in configurations:
                progress.set_postfix_str(f"pyconv, batch {batch}, {count} thread(s)")
                pyconv.set_num_threads(count)
                inputs = [np.random.default_rng(0).standard_normal(s, dtype=np.float32) for s in shapes[batch]]
                seconds["pyconv", batch, count] = median_seconds(lambda: model(*inputs), repeat, warm_up=2)
                progress.update()
        finally:
            pyconv.set_num_threads(before)
    names = {"torch": "torch", "onnxruntime": "ORT"}
    headers = ["batch", "threads", "ms (median)", "images/s", "GFLOP/s"]
    for engine in args.compare:
        headers += [f"{names[engine]} ms", f"{names[engine]}/pyconv"]
    rows = []
    for batch, count in configurations:
        ours = seconds["pyconv", batch, count]
        macs = model.summary(batch=batch).totals["MACs"]
        row = [batch, count, ours * 1e3, batch / ours, 2 * macs / ours / 1e9]
        for engine in args.compare:
            theirs = seconds[engine, batch, count]
            row += [theirs * 1e3, theirs / ours]
        rows.append(row)
    print(tabulate(rows, headers=headers, floatfmt=".3g"))
    if args.chart:
        labels = [f"batch {b}, {t} thr" for b, t in configurations]
        series = {names.get(e, e): [b / seconds[e, b, t] for b, t in configurations] for e in engines}
        bar_chart(args.chart, [(os.path.basename(args.model), labels, series)], "images/s")
        print(f"wrote {args.chart}")


def _check_bench_arguments(args):
    """_Failure for option combinations argparse cannot check, before anything is timed."""
    if args.compare and not args.factory:
        raise _Failure("--compare needs --factory MODULE:FACTORY, the torch model the file was exported from")
    if args.factory and not args.compare:
        raise _Failure("--factory is used with --compare only (e.g. --compare torch,onnxruntime)")
    if args.factory and ":" not in args.factory:
        raise _Failure(f"--factory: expected MODULE:FACTORY (e.g. torchvision.models:resnet18), got {args.factory!r}")
    needed = [e for e in args.compare if importlib.util.find_spec(e) is None]
    if "onnxruntime" in args.compare and importlib.util.find_spec("torch") is None:
        needed.append("torch")  # the ONNX model is exported with torch.onnx
    if needed:
        raise _Failure(f"--compare {','.join(args.compare)} needs {' and '.join(dict.fromkeys(needed))} "
                       f"(pip install {' '.join(dict.fromkeys(needed))})")
    if args.chart:
        if not args.chart.lower().endswith(".png"):
            raise _Failure(f"--chart: expected a .png file name, got {args.chart!r}")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise _Failure("--chart needs matplotlib (pip install 'pyconv[plot]')") from None


@contextlib.contextmanager
def _torch_process(args, model):
    """The child process running the --factory model in torch, checked to be the file's model."""
    from .export.timing import EngineError, EngineProcess
    try:
        with EngineProcess("torch", args.factory) as child:
            expected = model.summary().totals["params"]
            if child.parameters != expected:
                raise _Failure(f"--factory {args.factory} builds a model with {child.parameters:,} parameters, "
                               f"{args.model} has {expected:,}: not the model the file was exported from")
            yield child
    except (ValueError, EngineError) as error:  # ExportError: factory not found, not a Module, ...
        raise _Failure(str(error).removeprefix("export: ")) from None


def _other_engines(args, torch_child, configurations, shapes, repeat, progress):
    """{(engine, batch, threads): median seconds} of torch and/or ONNX Runtime, each in a child process (the
    ONNX model exported by the torch child, which is closed before ONNX Runtime starts)."""
    from .export.timing import EngineError, EngineProcess
    seconds = {}
    try:
        onnx_model = torch_child.onnx_model(shapes[configurations[0][0]]) if "onnxruntime" in args.compare else None
        if "torch" in args.compare:
            for batch, count in configurations:
                progress.set_postfix_str(f"torch, batch {batch}, {count} thread(s)")
                seconds["torch", batch, count] = torch_child.seconds(shapes[batch], count, repeat)
                progress.update()
        torch_child.close()
        if onnx_model is not None:
            with EngineProcess("onnxruntime", onnx_model) as child:
                for batch, count in configurations:
                    progress.set_postfix_str(f"onnxruntime, batch {batch}, {count} thread(s)")
                    seconds["onnxruntime", batch, count] = child.seconds(shapes[batch], count, repeat)
                    progress.update()
    except EngineError as error:
        raise _Failure(str(error)) from None
    return seconds


def bar_chart(path, panels, ylabel, lines=(), log=False):
    """Write a PNG of grouped bars to ``path``: ``panels`` is a list of (title, x labels, {series name: values
    per label}), one plot each, stacked; ``lines``: y values drawn as dashed horizontal lines; ``log``: a
    logarithmic y axis (for ratios)."""
    from matplotlib.figure import Figure

    widest = max(len(labels) * len(series) for _, labels, series in panels)
    figure = Figure(figsize=(max(6.0, 0.35 * widest + 2), 3.4 * len(panels)))
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (title, labels, series) in zip(axes, panels):
        width = 0.8 / len(series)
        for index, (name, values) in enumerate(series.items()):
            offset = (index - (len(series) - 1) / 2) * width
            ax.bar([x + offset for x in range(len(labels))], values, width, label=name)
        for y in lines:
            ax.axhline(y, color="grey", linestyle="--", linewidth=1)
        if log:
            ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0, ha="right"
                      if len(labels) > 4 else "center")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)


if __name__ == "__main__":
    sys.exit(main())
