"""Parsed objective expressions: :func:`parse_objective` turns the text (grammar: :mod:`.grammar`) into a
:class:`ParsedObjective`, the typed value of feature-vis's ``objective`` parameter, which
:meth:`ParsedObjective.build` turns into an engine :class:`~gradfx.engine.objectives.Objective` once the
model's layers are known. Parsing is TensorFlow-free, so a typo is reported before any compute."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gradfx.engine.errors import ParameterError, suggest

from .grammar import _BARE, BinOp, Call, Neg, Node, Num, Ref, _fail, _Parser, tokenize

__all__ = ["ParsedObjective", "parse_objective", "map_paths"]


@dataclass
class ParsedObjective:
    """A parsed objective expression, not yet tied to a model.

    ``layers`` maps every layer the expression names to the position of its first mention; ``channel_range``
    is ``(layer, [channels], pos)`` when the expression holds a range (then ``batch`` is its length);
    ``needs_top`` says it reads a classifier logit.
    """

    text: str
    tree: Node
    layers: dict[str, int] = field(default_factory=dict)
    channel_range: tuple[str, list[int], int] | None = None
    needs_top: bool = False

    @property
    def batch(self) -> int:
        return len(self.channel_range[1]) if self.channel_range else 1

    def error(self, pos: int, message: str) -> ParameterError:
        """A ParameterError pointing at ``pos``; ``message`` may hold '@' where the position goes."""
        return _fail(self.text, pos, message if "@" in message else message + " @")

    def labels(self, batch: int) -> list[str]:
        """A label for each image of a batch: ``layer:channel`` for a range, else ``#i``."""
        if self.channel_range:
            layer, channels, _ = self.channel_range
            return [f"{layer}:{c}" for c in channels]
        return [self.text] if batch == 1 else [f"#{i + 1}" for i in range(batch)]

    def build(self, channels: Mapping[str, int] | None = None,
              logit: Callable[[int], Any] | None = None, base_dir: str | os.PathLike | None = None) -> Any:
        """The engine :class:`Objective`. ``channels`` (layer -> channel count, for the model at hand) checks
        layer names and channel numbers; ``logit(n)`` builds a class-logit objective (when the model has a
        classifier top); ``base_dir`` resolves relative ``.npy`` paths."""
        from gradfx.engine import objectives as O  # noqa: N812 - TensorFlow only from here on

        if channels is not None:
            for layer, pos in self.layers.items():
                if layer not in channels:
                    raise self.error(pos, f"unknown layer {layer!r} @ for this model{suggest(layer, channels)}; "
                                     f"`gradfx models MODEL` lists its layers")

        def check_channel(layer: str, n: int, pos: int) -> int:
            if channels is not None and not 0 <= n < channels[layer]:
                raise self.error(pos, f"channel {n} @ is out of range: layer {layer} has channels 0 to "
                                 f"{channels[layer] - 1}")
            return n

        def build(node: Node) -> Any:
            if isinstance(node, Num):
                return node.value
            if isinstance(node, Neg):
                return -build(node.operand)
            if isinstance(node, BinOp):
                a, b = build(node.left), build(node.right)
                if node.op == "/":
                    if isinstance(b, O.Objective):
                        raise self.error(node.pos, "division by an objective @ is not supported; divide by a number")
                    if b == 0:
                        raise self.error(node.pos, "division by zero @")
                    return a / b
                return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b}[node.op]()
            if isinstance(node, Ref):
                if node.last is None:
                    return O.channel(node.layer, check_channel(node.layer, node.first, node.first_pos))
                check_channel(node.layer, node.last, node.last_pos)
                chans = list(range(node.first, node.last + 1))
                terms = [O.channel(node.layer, c, batch=i) for i, c in enumerate(chans)]
                obj = sum(terms[1:], terms[0]) * (1.0 / len(terms))
                obj.description = f"{node.layer}:{node.first}-{node.last}"
                obj.precedence = 3
                return obj
            assert isinstance(node, Call)
            return self._call(node, O, check_channel, logit, base_dir)

        result = build(self.tree)
        if not isinstance(result, O.Objective):
            raise self.error(0, "the expression is only a number @; it must read a layer, e.g. mixed4:97")
        return result

    def _call(self, node: Call, O: Any, check_channel: Callable, logit: Callable | None,  # noqa: N803, E741
              base_dir: str | os.PathLike | None) -> Any:
        name, args, kinds = node.name, node.args, node.kinds
        signatures = {
            "channel": "channel(LAYER, N)", "neuron": "neuron(LAYER, N[, X, Y])", "layer": "layer(LAYER)",
            "mean": "mean(LAYER)", "direction": "direction(LAYER, V1, V2, ...) or direction(LAYER, [V1, ...]) "
            "or direction(LAYER, 'vector.npy')", "diversity": "diversity(LAYER)", "logit": "logit(N)",
            "l1": "l1 or l1(CONSTANT)", "tv": "tv", "blur": "blur",
        }

        def bad(why: str, pos: int = node.pos) -> ParameterError:
            return self.error(pos, f"{why} @; usage: {signatures[name]}")

        def integer(i: int, what: str) -> int:
            value, pos = args[i]
            if kinds[i] != "number" or not float(value).is_integer() or value < 0:
                raise bad(f"{name}() needs {what} as a whole number >= 0", pos)
            return int(value)

        def layer_arg() -> str:
            if not args or kinds[0] != "name":
                raise bad(f"{name}() needs a layer name first", args[0][1] if args else node.pos)
            return args[0][0]

        if name in _BARE:
            if name == "l1":
                if len(args) > 1 or (args and kinds[0] != "number"):
                    raise bad("l1 takes at most one number")
                return O.l1(float(args[0][0])) if args else O.l1()
            if args:
                raise bad(f"{name} takes no arguments", args[0][1])
            return O.total_variation() if name == "tv" else O.blur()
        if name == "logit":
            if len(args) != 1:
                raise bad("logit() takes one class number")
            n = integer(0, "the class")
            if logit is None:
                raise bad("logit() needs a model with a classifier top")
            return logit(n)
        layer = layer_arg()
        if name in ("layer", "mean", "diversity"):
            if len(args) != 1:
                raise bad(f"{name}() takes only a layer", args[-1][1])
            return {"layer": O.layer_l2, "mean": O.layer_mean, "diversity": O.diversity}[name](layer)
        if name == "channel":
            if len(args) != 2:
                raise bad("channel() takes a layer and a channel")
            return O.channel(layer, check_channel(layer, integer(1, "the channel"), args[1][1]))
        if name == "neuron":
            if len(args) not in (2, 4):
                raise bad("neuron() takes a layer, a channel and optionally x and y")
            n = check_channel(layer, integer(1, "the channel"), args[1][1])
            if len(args) == 4:
                return O.neuron(layer, n, integer(2, "x"), integer(3, "y"))
            return O.neuron(layer, n)
        # direction
        if len(args) < 2:
            raise bad("direction() needs a layer and a vector")
        rest, rest_kinds = args[1:], kinds[1:]
        if rest_kinds == ("list",):
            vector = list(rest[0][0])
        elif rest_kinds == ("string",):
            vector = self._load_vector(rest[0][0], rest[0][1], base_dir)
        elif all(k == "number" for k in rest_kinds):
            vector = [v for v, _ in rest]
        else:
            raise bad("direction() takes numbers, one [list] or one 'path.npy' after the layer", rest[0][1])
        obj = O.direction(layer, vector)
        obj.description = f"direction({layer}, <{len(vector)} values>)"
        return obj

    def _load_vector(self, path: str, pos: int, base_dir: str | os.PathLike | None) -> list[float]:
        import numpy as np

        full = path if os.path.isabs(path) or base_dir is None else os.path.join(base_dir, path)
        if not path.endswith(".npy"):
            raise self.error(pos, f"direction vector file {path!r} @ must be a .npy file")
        try:
            array = np.load(full, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise self.error(pos, f"cannot read direction vector {full!r} @ ({exc})") from None
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.number):
            raise self.error(pos, f"direction vector {full!r} @ must hold a 1-D numeric array, got shape "
                             f"{array.shape} of {array.dtype}")
        return [float(v) for v in array]

def _walk(node: Node):
    yield node
    if isinstance(node, BinOp):
        yield from _walk(node.left)
        yield from _walk(node.right)
    elif isinstance(node, Neg):
        yield from _walk(node.operand)

def map_paths(text: str, fn: Callable[[str], str]) -> str:
    """``text`` with each quoted path in it (``direction(L, 'v.npy')``: the grammar's only strings) replaced by
    ``fn(path)``, the rest as it was. Text that does not tokenize comes back unchanged (parsing reports it)."""
    try:
        tokens = tokenize(text)
    except ParameterError:
        return text
    out, last = [], 0
    for tok in tokens:
        if tok.kind == "string":
            path = fn(tok.text[1:-1])
            quote = "'" if "'" not in path else '"'
            if quote in path:
                raise _fail(text, tok.pos, f"the path {path!r} @ holds both kinds of quote; rename the file")
            out += [text[last:tok.pos], quote, path, quote]
            last = tok.pos + len(tok.text)
    return "".join(out) + text[last:]

def parse_objective(text: str) -> ParsedObjective:
    """Parse an objective expression (see the module docstring); raises a positioned ParameterError."""
    if not isinstance(text, str):
        raise ParameterError(f"objective {text!r} must be text, e.g. 'mixed4:97'")
    tree = _Parser(text).parse()
    parsed = ParsedObjective(text, tree)
    for node in _walk(tree):
        if isinstance(node, Ref):
            parsed.layers.setdefault(node.layer, node.pos)
            if node.last is not None:
                if parsed.channel_range is not None:
                    raise _fail(text, node.pos, "a second channel range @; one expression holds at most one "
                                "range (its channels become the batch)")
                parsed.channel_range = (node.layer, list(range(node.first, node.last + 1)), node.pos)
        elif isinstance(node, Call):
            if node.name == "logit":
                parsed.needs_top = True
            elif node.args and node.kinds and node.kinds[0] == "name":
                parsed.layers.setdefault(node.args[0][0], node.args[0][1])
    return parsed
