"""Safe arithmetic for the calculator tool: parsed with ``ast``, never ``eval``.

Only numbers, the four operations, floor division, modulo, powers with a small exponent,
unary signs, parentheses, ``pi`` and ``e``, and a few functions (``sqrt``, ``abs``, ``round``)
are accepted. Spoken forms the model may pass through ("17 times 23", "2 to the power of 8",
"15% of 80") are rewritten to symbols first.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

MAX_EXPRESSION_CHARS = 200
# 10 ** 100 is instant; a power tower such as 9 ** 9 ** 9 would hang the event loop.
MAX_EXPONENT = 100
MAX_MAGNITUDE = 1e100

Number = int | float


class ExpressionError(ValueError):
    """The expression is not one the calculator accepts, or has no finite value."""


_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
_FUNCTIONS: dict[str, Callable[[Number], Number]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
}

# Spoken operators, longest first so "divided by" wins over a bare "by".
_WORDS = (
    (r"to the power of", "**"),
    (r"multiplied by", "*"),
    (r"divided by", "/"),
    (r"over", "/"),
    (r"times", "*"),
    (r"plus", "+"),
    (r"minus", "-"),
    (r"modulo|mod", "%"),
    (r"squared", "**2"),
    (r"cubed", "**3"),
)
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent)\s+of\s+", re.IGNORECASE)
# "%" followed by an operand is modulo ("10 % 4"), otherwise a percentage ("50 + 10%").
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%(?!\s*[\d(.])|percent\b)", re.IGNORECASE)
_SQUARE_ROOT = re.compile(r"\bsquare root of\s+(\d+(?:\.\d+)?)", re.IGNORECASE)


def normalize(expression: str) -> str:
    """Rewrite spoken and typographic operators to Python's symbols."""
    text = expression.strip().rstrip("?=.").strip()
    text = text.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = _SQUARE_ROOT.sub(r"sqrt(\1)", text)
    text = _PERCENT_OF.sub(r"(\1 / 100) * ", text)
    text = _PERCENT.sub(r"(\1 / 100)", text)
    for words, symbol in _WORDS:
        text = re.sub(rf"\b(?:{words})\b", f" {symbol} ", text, flags=re.IGNORECASE)
    text = re.sub(r"(?<=\d)\s*[xX]\s*(?=[\d(])", " * ", text)
    return " ".join(text.split())


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression.

    Raises:
        ExpressionError: with the reason, for anything outside the whitelist, a division by
            zero, an exponent over ``MAX_EXPONENT`` or a result beyond ``MAX_MAGNITUDE``.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    text = normalize(expression)
    if not text:
        raise ExpressionError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"cannot parse {expression!r}") from error
    return _checked(_eval(tree.body))


def _checked(value: Number) -> Number:
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError("the result is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise ExpressionError("the result is too large")
    return value


def _eval(node: ast.expr) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ExpressionError(f"not a number: {node.value!r}")
        return _checked(node.value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ExpressionError(f"unknown name {node.id!r}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ExpressionError(f"exponent larger than {MAX_EXPONENT}")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as error:
            raise ExpressionError("division by zero") from error
        except OverflowError as error:
            raise ExpressionError("the result is too large") from error
        if isinstance(result, complex):
            raise ExpressionError("the result is not a real number")
        return _checked(result)
    if isinstance(node, ast.Call):
        return _call(node)
    raise ExpressionError(f"unsupported syntax: {type(node).__name__}")


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        raise ExpressionError("unsupported function")
    if len(node.args) != 1 or node.keywords:
        raise ExpressionError(f"{node.func.id} takes one argument")
    try:
        return _checked(_FUNCTIONS[node.func.id](_eval(node.args[0])))
    except ValueError as error:
        if isinstance(error, ExpressionError):
            raise
        raise ExpressionError(f"{node.func.id}: {error}") from error


def format_number(value: Number) -> str:
    """A value as it is read aloud: integers without ``.0``, others to two decimals (three
    significant digits below one)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 1e15:
        return f"{value:.6g}"
    if abs(value) >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"
