"""Graphs of exported models and their executor, without torch.

``ir`` (Graph, Node, Value: the IR and its validation), ``ops`` (the ops), ``passes`` (graph rewrites),
``memory`` (buffer reuse by liveness), ``executor`` (Model), ``summary`` (tables), ``file`` (the .pyconv
file).  ``load(path)`` reads a .pyconv file into a ready-to-run Model.
"""
from .executor import Model
from .file import FORMAT_VERSION, ModelFileError, load_graph, save_graph
from .ir import Graph, GraphError, Node, Value
from .passes import DEFAULT_PASSES

__all__ = ["load", "Model", "Graph", "Node", "Value", "GraphError", "ModelFileError", "load_graph", "save_graph",
           "FORMAT_VERSION", "DEFAULT_PASSES"]


def load(path, *, passes=DEFAULT_PASSES, debug=False):
    """The model of the .pyconv file at ``path``, optimised and ready to call: ``y = pyconv.load(path)(x)``.

    Raises ModelFileError (a ValueError) for a file that is not a valid .pyconv file.
    """
    return Model(load_graph(path), passes=passes, debug=debug)
