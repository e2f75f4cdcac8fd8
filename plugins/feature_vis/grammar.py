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

import re
from dataclasses import dataclass
from typing import Any

from gradfx.engine.errors import ParameterError, suggest

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
