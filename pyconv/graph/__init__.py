"""Graphs of exported models and their executor, without torch.

``ir`` (Graph, Node, Value: the IR and its validation), ``ops`` (the ops), ``passes`` (graph rewrites),
``memory`` (buffer reuse by liveness), ``executor`` (Model), ``autotune`` (algorithms chosen by timing),
``summary`` (tables), ``file`` (the .pyconv file).  ``load(path)`` reads a .pyconv file into a ready-to-run Model.
"""
from .executor import Model
from .file import FORMAT_VERSION, ModelFileError, load_graph, save_graph
from .ir import Graph, GraphError, Node, Value
from .passes import DEFAULT_PASSES

__all__ = ["load", "Model", "Graph", "Node", "Value", "GraphError", "ModelFileError", "load_graph", "save_graph",
           "FORMAT_VERSION", "DEFAULT_PASSES"]


def load(path, *, passes=DEFAULT_PASSES, debug=False, autotune=False):
    """The model of the .pyconv file at ``path``, optimised and ready to call: ``y = pyconv.load(path)(x)``.

    ``autotune=True`` times each convolution's algorithms for the batch sizes and thread counts run and
    caches the choices in ``path + '.plan.json'`` (see ``pyconv.graph.autotune``).
    Raises ModelFileError (a ValueError) for a file that is not a valid .pyconv file.
    """
    return Model(load_graph(path), passes=passes, debug=debug, autotune=autotune,
                 model_file=path if autotune else None)
