"""Op and attribute declarations shared by the op families, and the registry OPS."""
import math

__all__ = ["Attr", "Op", "OpError", "OPS", "register", "INT_LIMIT", "axis"]

OPS = {}
INT_LIMIT = 2 ** 62


class OpError(ValueError):
    """An op's attributes, inputs or shapes are invalid."""


def register(cls):
    """Class decorator: add an instance of the Op subclass to OPS under its ``name``."""
    OPS[cls.name] = cls()
    return cls


class Attr:
    """An attribute type: ``Attr('int', min=1)``, ``Attr('ints', length=2)``, ``Attr('float', optional=True)``,
    ``Attr('choice', choices=(...))``, ``Attr('bool')``, ``Attr('dims')`` (a shape with 'N' / 'k*N' / -1),
    ``Attr('args')`` (keyword arguments: names to numbers or strings)."""

    def __init__(self, kind, *, optional=False, min=None, length=None, choices=None):
        self.kind, self.optional, self.min, self.length, self.choices = kind, optional, min, length, choices

    def check(self, value, name):
        if value is None:
            if not self.optional:
                raise OpError(f"attribute {name!r} is required, got null")
            return
        check = getattr(self, "_" + self.kind)
        check(value, name)

    def _int(self, value, name):
        if type(value) is not int or abs(value) > INT_LIMIT:
            raise OpError(f"attribute {name!r}: expected an int, got {value!r:.60}")
        if self.min is not None and value < self.min:
            raise OpError(f"attribute {name!r}: expected an int >= {self.min}, got {value}")

    def _ints(self, value, name):
        if type(value) is not list or (self.length is not None and len(value) != self.length) or len(value) > 16:
            wanted = f"{self.length} ints" if self.length is not None else "a list of at most 16 ints"
            raise OpError(f"attribute {name!r}: expected {wanted}, got {value!r:.60}")
        for item in value:
            self._int(item, name)

    def _float(self, value, name):
        if type(value) not in (int, float) or not math.isfinite(value):
            raise OpError(f"attribute {name!r}: expected a finite number, got {value!r:.60}")
        if self.min is not None and value < self.min:
            raise OpError(f"attribute {name!r}: expected a number >= {self.min}, got {value}")

    def _floats(self, value, name):
        if type(value) is not list or len(value) > 16:
            raise OpError(f"attribute {name!r}: expected a list of numbers, got {value!r:.60}")
        for item in value:
            self._float(item, name)

    def _bool(self, value, name):
        if type(value) is not bool:
            raise OpError(f"attribute {name!r}: expected true or false, got {value!r:.60}")

    def _choice(self, value, name):
        if type(value) is not str or value not in self.choices:
            raise OpError(f"attribute {name!r}: expected one of {', '.join(map(repr, self.choices))}, "
                          f"got {value!r:.60}")

    def _dims(self, value, name):
        from ..ir import GraphError, check_shape
        if type(value) is not list:
            raise OpError(f"attribute {name!r}: expected a shape, got {value!r:.60}")
        try:
            check_shape([d for d in value if d != -1], f"attribute {name!r}")
        except GraphError as error:
            raise OpError(str(error)) from None

    def _args(self, value, name):
        if type(value) is not dict or len(value) > 8 or not all(
                type(k) is str and (type(v) is str and len(v) < 64 or type(v) in (int, float) and math.isfinite(v))
                for k, v in value.items()):
            raise OpError(f"attribute {name!r}: expected an object of a few names to numbers or strings, "
                          f"got {value!r:.60}")


class Op:
    """One IR op (see the package docstring); subclasses set the class attributes and ``infer``/``kernel``."""
    name = None
    inputs = ("input",)
    outputs = 1
    attrs = {}
    writes_out = True
    view = False

    # ---------------------------------------------------------------- declarations

    def _slots(self):
        """(name, optional, constant, variadic) per declared input."""
        slots = []
        for text in self.inputs:
            name, _, kind = text.partition(":")
            variadic = name.endswith("*")
            optional = name.endswith("?")
            slots.append((name.rstrip("*?"), optional, kind == "const", variadic))
        return slots

    def input_name(self, position):
        slots = self._slots()
        return slots[min(position, len(slots) - 1)][0]

    def needs_constant(self, position):
        slots = self._slots()
        return slots[min(position, len(slots) - 1)][2]

    def output_count(self, attrs):
        return self.outputs

    def check_attrs(self, attrs):
        if set(attrs) != set(self.attrs):
            missing, extra = sorted(set(self.attrs) - set(attrs)), sorted(set(attrs) - set(self.attrs))
            raise OpError("attributes " + ", ".join(
                part for part in (f"missing {missing}" if missing else "", f"unknown {extra}" if extra else "")
                if part))
        for name, attr in self.attrs.items():
            attr.check(attrs[name], name)

    def check_arity(self, inputs, n_outputs, attrs):
        slots = self._slots()
        variadic = slots[-1][3]
        if variadic:
            if len(inputs) < len(slots) or len(inputs) > 4096:
                raise OpError(f"expected at least {len(slots)} inputs, got {len(inputs)}")
        elif len(inputs) != len(slots):
            raise OpError(f"expected {len(slots)} inputs ({', '.join(s[0] for s in slots)}), got {len(inputs)}")
        for position, name in enumerate(inputs):
            slot = slots[min(position, len(slots) - 1)]
            if name is None and not slot[1]:
                raise OpError(f"input {position} ({slot[0]}) is required, got null")
        expected = self.output_count(attrs)
        if n_outputs != expected:
            raise OpError(f"expected {expected} outputs, got {n_outputs}")

    def check_dtypes(self, inputs, outputs):
        """OpError unless the input and output dtypes are the op's (float32 everywhere by default)."""
        for position, dtype in enumerate(inputs):
            if dtype is not None and dtype != "float32":
                raise OpError(f"input {position} ({self.input_name(position)}) must be float32, got {dtype}")
        for position, dtype in enumerate(outputs):
            if dtype != "float32":
                raise OpError(f"output {position} must be float32, got {dtype}")

    # ---------------------------------------------------------------- behaviour

    def infer(self, shapes, attrs, batch, constants):
        """Output shapes (tuples of ints) from input shapes; OpError/ValueError if the inputs do not fit."""
        raise NotImplementedError

    def kernel(self, attrs, constants):
        """A callable ``kernel(inputs, outs) -> outputs`` for a node with these attributes and constant inputs."""
        raise NotImplementedError

    def macs(self, shapes, out_shapes, attrs):
        """Multiply-accumulates of the node (0 for ops that are not products)."""
        return 0


def axis(dim, ndim, name="dim"):
    """``dim`` normalised into [0, ndim); OpError if out of range."""
    if not -ndim <= dim < ndim:
        raise OpError(f"{name} {dim} is out of range for {ndim} dims")
    return dim % ndim

