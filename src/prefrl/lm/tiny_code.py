"""A tiny programming language for the coding task, and its interpreter (no Python ``eval``).

A program is one expression in ``x`` (the function's argument), written as space-separated words::

    expr   := "if" cond "then" expr "else" expr | arith
    cond   := arith ("=" | "<") arith
    arith  := term (("+" | "-") term)*
    term   := factor ("*" factor)*
    factor := NUMBER | "x" | "f" "(" expr ")" | "(" expr ")"

``f ( e )`` calls the program itself on ``e`` (recursion), so a program can loop for ever
(``f ( x )``): evaluation is bounded by ``max_steps`` node evaluations and ``max_depth`` nested
calls. :func:`run` never raises on a program: a malformed one, one past its bounds or one whose
value grows past ``MAX_VALUE`` gives ``None``, i.e. a failed test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_NUMBER = 99
"""Largest number literal (numbers are words of the vocabulary: 0 .. MAX_NUMBER)."""
MAX_VALUE = 10**6
"""A value past this (in magnitude) stops the program: no test needs one."""
KEYWORDS = ("x", "f", "(", ")", "+", "-", "*", "=", "<", "if", "then", "else")

Node = int | str | tuple[Any, ...]
"""Parsed program: an int (literal), "x", ("call", arg), (op, left, right) for + - *,
("if", op, left, right, then, else) with op "=" or "<"."""


class ProgramError(Exception):
    """The program is malformed, or its evaluation went past a bound."""


class _Parser:
    def __init__(self, words: list[str]) -> None:
        self.words, self.pos = words, 0

    def peek(self) -> str | None:
        return self.words[self.pos] if self.pos < len(self.words) else None

    def take(self, expected: str | None = None) -> str:
        word = self.peek()
        if word is None or (expected is not None and word != expected):
            raise ProgramError(f"expected {expected or 'a word'} at word {self.pos}, got {word!r}")
        self.pos += 1
        return word

    def expr(self) -> Node:
        if self.peek() == "if":
            self.take("if")
            left = self.arith()
            op = self.take()
            if op not in ("=", "<"):
                raise ProgramError(f"expected = or < at word {self.pos - 1}, got {op!r}")
            right = self.arith()
            self.take("then")
            then = self.expr()
            self.take("else")
            return ("if", op, left, right, then, self.expr())
        return self.arith()

    def arith(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            node = (self.take(), node, self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.peek() == "*":
            node = (self.take(), node, self.factor())
        return node

    def factor(self) -> Node:
        word = self.take()
        if word == "x":
            return "x"
        if word == "(":
            node = self.expr()
            self.take(")")
            return node
        if word == "f":
            self.take("(")
            arg = self.expr()
            self.take(")")
            return ("call", arg)
        if word.isdigit() and int(word) <= MAX_NUMBER:
            return int(word)
        raise ProgramError(f"unexpected {word!r} at word {self.pos - 1}")


def parse(program: str) -> Node:
    """Program text -> its tree; raises :class:`ProgramError` when it is not a whole expression."""
    parser = _Parser(program.split())
    node = parser.expr()
    if parser.peek() is not None:
        raise ProgramError(f"unexpected {parser.peek()!r} after the expression at word {parser.pos}")
    return node


@dataclass
class _Evaluation:
    program: Node
    max_steps: int
    max_depth: int
    steps: int = 0

    def eval(self, node: Node, x: int, depth: int) -> int:
        self.steps += 1
        if self.steps > self.max_steps:
            raise ProgramError(f"more than {self.max_steps} steps")
        if isinstance(node, int):
            return node
        if node == "x":
            return x
        assert isinstance(node, tuple)
        if node[0] == "call":
            if depth >= self.max_depth:
                raise ProgramError(f"more than {self.max_depth} nested calls")
            return self.eval(self.program, self.eval(node[1], x, depth), depth + 1)
        if node[0] == "if":
            _, op, left, right, then, other = node
            a, b = self.eval(left, x, depth), self.eval(right, x, depth)
            return self.eval(then if (a == b if op == "=" else a < b) else other, x, depth)
        op, left, right = node
        a, b = self.eval(left, x, depth), self.eval(right, x, depth)
        value = a + b if op == "+" else a - b if op == "-" else a * b
        if abs(value) > MAX_VALUE:
            raise ProgramError(f"a value past {MAX_VALUE}")
        return value


def run(program: str | Node, x: int, max_steps: int = 2000, max_depth: int = 30) -> int | None:
    """The program's value at ``x``, or None when it is malformed or goes past a bound."""
    try:
        tree = parse(program) if isinstance(program, str) else program
        return _Evaluation(tree, max_steps, max_depth).eval(tree, x, 0)
    except (ProgramError, RecursionError):  # RecursionError: a program nested past Python's stack
        return None


def pass_rate(program: str, tests: list[tuple[int, int]]) -> float:
    """Share of (input, expected output) tests the program passes (0 for a malformed program)."""
    if not tests:
        return 0.0
    try:
        tree = parse(program)
    except (ProgramError, RecursionError):
        return 0.0
    return sum(run(tree, x) == y for x, y in tests) / len(tests)
