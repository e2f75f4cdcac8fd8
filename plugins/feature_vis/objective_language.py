"""Objective expressions: ``mixed4:97``, ``block4_conv1:12 - 0.5*block4_conv1:3``, ``layer(mixed5)``...

A small recursive-descent parser (a tokenizer and the grammar below; never ``eval``) turns the text into a
tree, which :meth:`ParsedObjective.build` turns into an engine :class:`~gradfx.engine.objectives.Objective`
once the model's layers are known. Parsing is TensorFlow-free, so a typo is reported before any compute.

Grammar (whitespace is free except inside a channel range, which is written without spaces)::

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary)*
    unary   := "-" unary | atom
    atom    := NUMBER | "(" expr ")" | ref | call | "l1" | "tv" | "blur"
    ref     := LAYER ":" INT                      channel mean, e.g. mixed4:97
             | LAYER ":" INT "-" INT              channel range, one image each, e.g. mixed4:0-15
    call    := NAME "(" [arg ("," arg)*] ")"
    arg     := LAYER | NUMBER | "-" NUMBER | STRING | "[" NUMBER ("," NUMBER)* "]"

Functions: ``channel(L, n)``, ``neuron(L, n[, x, y])`` (the centre position unless x, y), ``layer(L)``
(lucid's DeepDream objective, the mean squared activation), ``mean(L)`` (the mean activation),
``direction(L, v1, v2, ...)`` / ``direction(L, [v1, ...])`` / ``direction(L, 'vector.npy')``,
``diversity(L)``, ``logit(N)`` (needs a classifier top), ``l1`` / ``l1(c)``, ``tv`` and ``blur``.

Every error is a :class:`ParameterError` that shows the expression, the position (0-based: the number of
characters before the fault) and a caret, in one line, and says what was expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gradfx.engine.errors import ParameterError, suggest

__all__ = ["ParsedObjective", "parse_objective", "map_paths"]

FUNCTIONS = ("channel", "neuron", "layer", "mean", "direction", "diversity", "logit", "l1", "tv", "blur")
_BARE = ("l1", "tv", "blur")
_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<string>'[^']*'|\"[^\"]*\")"
    r"|(?P<op>[-+*/(),:\[\]])"
)


@dataclass(frozen=True)
class Token:
    kind: str  # number, name, string, op, end
    text: str
    pos: int
    glued: bool  # no whitespace before it


# ------------------------------------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Node:
    pos: int


@dataclass(frozen=True)
class Num(Node):
    value: float


@dataclass(frozen=True)
class Ref(Node):
    layer: str
    first: int
    last: int | None = None  # a channel range first..last (inclusive)
    first_pos: int = 0
    last_pos: int = 0


@dataclass(frozen=True)
class Call(Node):
    name: str
    args: tuple[Any, ...] = ()  # (value, pos) pairs: str (layer), float/int, tuple of floats, Path-like str
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Neg(Node):
    operand: Node


# ------------------------------------------------------------------------------------------ the parser


def _fail(text: str, pos: int, message: str) -> ParameterError:
    """``objective 'TEXT': MESSAGE; here: TE^XT`` with '@' in MESSAGE replaced by ``at position POS``. Its
    ``detail`` is the message without the leading ``objective 'TEXT': `` (for a caller that names the
    parameter itself: the ``here:`` part shows the text)."""
    detail = f"{message.replace('@', f'at position {pos}')}; here: {text[:pos]}^{text[pos:]}"
    error = ParameterError(f"objective {text!r}: {detail}")
    error.detail = detail
    return error


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos, glued = 0, True
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _fail(text, pos, f"unexpected {text[pos]!r} @; expected a layer:channel, a number, a function "
                        f"call, an operator (+ - * /) or parentheses")
        kind = m.lastgroup or ""
        if kind == "space":
            glued = False
        else:
            if kind == "number" and m.end() < len(text) and (text[m.end()].isalpha() or text[m.end()] == "_"):
                raise _fail(text, m.end(), f"unexpected {text[m.end()]!r} @; a number must not run into a name "
                            f"(expected a digit, an operator or the end)")
            tokens.append(Token(kind, m.group(), pos, glued))
            glued = True
        pos = m.end()
    tokens.append(Token("end", "", len(text), glued))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tok
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def error(self, expected: str, tok: Token | None = None) -> ParameterError:
        tok = tok or self.tok
        what = "the end of the expression" if tok.kind == "end" else f"unexpected {tok.text!r}"
        return _fail(self.text, tok.pos, f"{what} @; expected {expected}")

    def expect(self, op: str, expected: str | None = None) -> Token:
        if self.tok.kind != "op" or self.tok.text != op:
            raise self.error(expected or f"{op!r}")
        return self.advance()

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise _fail(self.text, 0, "the expression is empty @; expected e.g. mixed4:97 or layer(mixed5)")
        node = self.expr()
        if self.tok.kind != "end":
            raise self.error("an operator (+ - * /) or the end")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.advance()
            node = BinOp(op.pos, op.text, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in "*/":
            op = self.advance()
            node = BinOp(op.pos, op.text, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text == "-":
            op = self.advance()
            return Neg(op.pos, self.unary())
        if self.tok.kind == "op" and self.tok.text == "+":
            self.advance()
            return self.unary()
        return self.atom()

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return Num(tok.pos, float(tok.text))
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            node = self.expr()
            self.expect(")", "')' or an operator (+ - * /)")
            return node
        if tok.kind == "name":
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text == ":":
                return self.ref()
            if nxt.kind == "op" and nxt.text == "(":
                return self.call()
            if tok.text in _BARE:
                self.advance()
                return Call(tok.pos, tok.text)
            if tok.text in FUNCTIONS:
                raise _fail(self.text, nxt.pos, f"function {tok.text}() needs its arguments @; e.g. "
                            f"{tok.text}(mixed4{', 97' if tok.text in ('channel', 'neuron') else ''})")
            raise _fail(self.text, tok.pos, f"{tok.text!r} @ is neither a layer:channel nor a function; write "
                        f"{tok.text}:N for channel N, layer({tok.text}) for the whole layer, or one of "
                        f"{', '.join(FUNCTIONS)}{suggest(tok.text, FUNCTIONS)}")
        raise self.error("a layer:channel, a number, a function call or '('")

    def integer(self, what: str) -> tuple[int, Token]:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.error(what)
        self.advance()
        return int(tok.text), tok

    def ref(self) -> Node:
        name = self.advance()
        self.advance()  # ':'
        first, first_tok = self.integer("a channel number (a whole number >= 0) after ':'")
        dash, after = self.tok, self.peek()
        if (dash.kind == "op" and dash.text == "-" and dash.glued and after.kind == "number" and after.glued
                and after.text.isdigit()):
            self.advance()
            last, last_tok = self.integer("the last channel of the range")
            if last < first:
                raise _fail(self.text, dash.pos, f"channel range {first}-{last} @ runs backwards; write "
                            f"{first}-{last} the other way round, or put spaces round '-' to subtract")
            return Ref(name.pos, name.text, first, last, first_tok.pos, last_tok.pos)
        return Ref(name.pos, name.text, first, None, first_tok.pos)

    def call(self) -> Node:
        name = self.advance()
        if name.text not in FUNCTIONS:
            raise _fail(self.text, name.pos, f"unknown function {name.text!r} @{suggest(name.text, FUNCTIONS)}; "
                        f"functions: {', '.join(FUNCTIONS)}")
        self.advance()  # '('
        args: list[tuple[Any, int]] = []
        kinds: list[str] = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            while True:
                value, kind, pos = self.arg()
                args.append((value, pos))
                kinds.append(kind)
                if self.tok.kind == "op" and self.tok.text == ",":
                    self.advance()
                    continue
                self.expect(")", "',' or ')'")
                break
        else:
            self.advance()
        return Call(name.pos, name.text, tuple(args), tuple(kinds))

    def arg(self) -> tuple[Any, str, int]:
        tok = self.tok
        if tok.kind == "name":
            self.advance()
            return tok.text, "name", tok.pos
        if tok.kind == "string":
            self.advance()
            return tok.text[1:-1], "string", tok.pos
        if tok.kind == "number" or (tok.kind == "op" and tok.text == "-"):
            return self.signed(), "number", tok.pos
        if tok.kind == "op" and tok.text == "[":
            self.advance()
            values = [self.signed()]
            while self.tok.kind == "op" and self.tok.text == ",":
                self.advance()
                values.append(self.signed())
            self.expect("]", "',' or ']'")
            return tuple(values), "list", tok.pos
        raise self.error("an argument: a layer name, a number, a [list] or a 'quoted path'")

    def signed(self) -> float:
        sign = 1.0
        if self.tok.kind == "op" and self.tok.text == "-":
            self.advance()
            sign = -1.0
        if self.tok.kind != "number":
            raise self.error("a number")
        return sign * float(self.advance().text)


# ---------------------------------------------------------------------------------------- the result


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
