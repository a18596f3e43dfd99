"""The tools every deployment has: search of the caller's conversations, and arithmetic."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from pydantic import Field

from server.tools.registry import Tool, ToolContext, tool

MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100


@tool
async def search_conversations(
    context: ToolContext,
    query: Annotated[
        str,
        Field(min_length=1, max_length=200, description="Words to find (each the start of a word)"),
    ],
    limit: Annotated[int, Field(ge=1, le=20, description="At most this many hits")] = 5,
) -> Any:
    """Search the user's own earlier conversations by words (case and accents aside).

    A message matches when it holds, for each word given, a word beginning with it.
    Returns the matching messages, newest first, with their conversation's title and a
    snippet around the first match."""
    hits = await context.search(query, limit)
    return hits or f"No message of yours contains {query!r}."


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


@tool
async def calculate(
    expression: Annotated[
        str,
        Field(min_length=1, max_length=200, description="Arithmetic, e.g. `(2 + 3) * 4 ** 2`"),
    ],
) -> str:
    """Evaluate an arithmetic expression exactly: + - * / // % ** and parentheses on numbers.

    Use it rather than computing by hand. Returns the result, or why it could not."""
    try:
        value = _evaluate(ast.parse(expression, mode="eval").body)
    except (SyntaxError, ValueError, ArithmeticError) as error:
        return f"Cannot evaluate {expression!r}: {error or type(error).__name__}"
    return f"{expression} = {value}"


def _evaluate(node: ast.expr) -> int | float:
    """Numbers and operators only: a name, call or attribute is refused, never looked up."""
    value: int | float
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise ValueError("only numbers are allowed")
        value = node.value
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponents above {MAX_EXPONENT} are refused")
        value = _BINARY[type(node.op)](left, right)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        value = _UNARY[type(node.op)](_evaluate(node.operand))
    else:
        raise ValueError("only numbers, + - * / // % ** and parentheses are allowed")
    if isinstance(value, complex) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError("the result is not a finite real number")
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError("the result is too large")
    return value


BUILTIN_TOOLS: tuple[Tool, ...] = tuple(
    replace(built, source="builtin") for built in (search_conversations, calculate)
)
