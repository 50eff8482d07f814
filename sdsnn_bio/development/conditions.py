"""Prune and regrow synapses with Brian2-style string conditions (what brian2 issue #166 asks for).

Brian2 selects synapses with conditions such as ``S.connect(condition='i != j')`` or
``S.w['abs(w) < 0.01'] = 0`` but cannot delete synapses. Here::

    prune(projection, "abs(w) < 0.01")                 existing synapses where the condition holds
                                                        become absent (latent weight kept)
    regrow(projection, "w > 0.5 and upper > 0.2", w=0.1)
                                                        absent synapses where it holds are restored

A condition is an expression over the synaptic variables of every potential synapse ``(i, j)`` of
the projection: ``w``, ``i``, ``j``, ``exists``, the spine state ``spine_range_lower``,
``spine_range_upper`` (aliases ``lower``, ``upper``), ``spine_width``, ``upper_streak``,
``upper_excess``, ``lower_streak``, ``lower_excess``, ``shrink_streak``, ``previous_abs_weight``,
``regrowth_streak`` and, when the populations' masks are given, ``alive_pre`` and ``alive_post``.
It may use numbers, ``True``/``False``, ``pi``, the operators ``+ - * / // % **``, comparisons
(chained too), ``and``, ``or``, ``not``, conditional expressions ``a if c else b`` and the functions
``abs, exp, log, log10, sqrt, sin, cos, tanh, sign, floor, ceil, clip, minimum, maximum`` and
``rand()`` (uniform in [0, 1), one draw per synapse, from the ``rng`` argument). The expression is
parsed with :mod:`ast` and evaluated node by node over NumPy arrays: nothing else is executed.

Both functions are pure: they return a :class:`ConditionResult` holding a new projection and the
``(i, j)`` indices of the synapses they changed (row-major order). On a live Brian2 network use
:meth:`sdsnn_bio.development.StructuralScheduler.prune` / ``.regrow``.
"""

from __future__ import annotations

import ast
import operator
from typing import NamedTuple

import numpy as np

from ..structure import SPINE_FIELDS, Projection

__all__ = ["ConditionError", "ConditionResult", "evaluate_condition", "evaluate_mask", "prune", "regrow",
           "condition_variables"]


class ConditionError(ValueError):
    """An invalid condition: unknown name, forbidden syntax, or a result of the wrong shape."""


class ConditionResult(NamedTuple):
    """A projection after a conditional change and the ``(i, j)`` pairs that changed."""

    projection: Projection
    i: np.ndarray
    j: np.ndarray


_SPINE_NAMES = {
    "spine_range_lower": "lower",
    "spine_range_upper": "upper",
    "lower": "lower",
    "upper": "upper",
    **{name: name for name in SPINE_FIELDS if name not in ("lower", "upper")},
}

_FUNCTIONS = {
    "abs": (1, np.abs), "exp": (1, np.exp), "log": (1, np.log), "log10": (1, np.log10),
    "sqrt": (1, np.sqrt), "sin": (1, np.sin), "cos": (1, np.cos), "tanh": (1, np.tanh),
    "sign": (1, np.sign), "floor": (1, np.floor), "ceil": (1, np.ceil), "clip": (3, np.clip),
    "minimum": (2, np.minimum), "maximum": (2, np.maximum),
}
_CONSTANTS = {"pi": np.pi, "True": True, "False": False}
_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_SYMBOL = {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.Invert: "~", ast.MatMult: "@",
           ast.LShift: "<<", ast.RShift: ">>", ast.Is: "is", ast.IsNot: "is not", ast.In: "in",
           ast.NotIn: "not in"}


def condition_variables(projection: Projection, source_alive=None, target_alive=None) -> dict:
    """The variables a condition may use, as arrays broadcastable to the projection's shape."""
    n_source, n_target = projection.shape
    variables = {
        "w": projection.weight,
        "i": np.arange(n_source)[:, None],
        "j": np.arange(n_target)[None, :],
        "exists": projection.exists,
        "spine_width": projection.spine.width,
    }
    for name, field_name in _SPINE_NAMES.items():
        variables[name] = getattr(projection.spine, field_name)
    if source_alive is not None:
        variables["alive_pre"] = np.asarray(source_alive, dtype=bool)[:, None]
    if target_alive is not None:
        variables["alive_post"] = np.asarray(target_alive, dtype=bool)[None, :]
    return variables


def _quote(text: str) -> str:
    return repr(text) if len(text) <= 200 else repr(text[:200]) + "..."


def _operator_name(node) -> str:
    return _SYMBOL.get(type(node), type(node).__name__)


class _Evaluator:
    def __init__(self, text: str, variables: dict, shape: tuple, rng) -> None:
        self.text = text
        self.variables = variables
        self.shape = shape
        self.rng = rng

    def fail(self, message: str) -> None:
        raise ConditionError(f"condition {_quote(self.text)}: {message}")

    def known(self) -> str:
        return ", ".join(sorted(self.variables))

    def __call__(self, node):
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            self.fail(
                f"{type(node).__name__} ({ast.unparse(node) if isinstance(node, ast.AST) else node!r}) "
                "is not allowed; use numbers, variables, arithmetic, comparisons, and/or/not and "
                f"the functions {', '.join(sorted(_FUNCTIONS))}, rand()"
            )
        return method(node)

    def visit_Expression(self, node):
        return self(node.body)

    def visit_Constant(self, node):
        if isinstance(node.value, bool):
            return node.value
        if isinstance(node.value, (int, float)):
            try:
                return float(node.value)  # numbers are floats, as in Brian2 (no unbounded integers)
            except OverflowError:
                self.fail(f"a number with {len(str(node.value))} digits is too large")
        self.fail(f"the literal {node.value!r} is not a number")

    def visit_Name(self, node):
        if node.id in self.variables:
            return self.variables[node.id]
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if node.id in _FUNCTIONS or node.id == "rand":
            self.fail(f"{node.id} is a function: call it, e.g. {node.id}(...)")
        self.fail(f"unknown variable {node.id!r}; known variables: {self.known()} "
                  f"(constants: {', '.join(sorted(_CONSTANTS))})")

    def visit_BoolOp(self, node):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = self._boolean(node.values[0])
        for value in node.values[1:]:
            result = combine(result, self._boolean(value))
        return result

    def _boolean(self, node):
        value = np.asarray(self(node))
        if value.dtype != bool:
            self.fail(f"{ast.unparse(node)!r} is not a condition (and/or/not need comparisons or booleans)")
        return value

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.Not):
            return np.logical_not(self._boolean(node.operand))
        if isinstance(node.op, ast.USub):
            return -np.asarray(self(node.operand))
        if isinstance(node.op, ast.UAdd):
            return +np.asarray(self(node.operand))
        self.fail(f"operator {_operator_name(node.op)!r} is not allowed; use not/and/or")

    def visit_BinOp(self, node):
        function = _BINARY.get(type(node.op))
        if function is None:
            self.fail(f"operator {_operator_name(node.op)!r} is not allowed; use and/or/not "
                      "for conditions and + - * / // % ** for arithmetic")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return function(np.asarray(self(node.left)), np.asarray(self(node.right)))

    def visit_Compare(self, node):
        result = None
        left = np.asarray(self(node.left))
        for op, comparator in zip(node.ops, node.comparators):
            function = _COMPARE.get(type(op))
            if function is None:
                self.fail(f"comparison {_operator_name(op)!r} is not allowed; use < <= > >= == !=")
            right = np.asarray(self(comparator))
            step = function(left, right)
            result = step if result is None else np.logical_and(result, step)
            left = right
        return result

    def visit_IfExp(self, node):
        return np.where(self._boolean(node.test), self(node.body), self(node.orelse))

    def visit_Call(self, node):
        if not isinstance(node.func, ast.Name):
            self.fail(f"only the functions {', '.join(sorted(_FUNCTIONS))}, rand() can be called, "
                      f"not {ast.unparse(node.func)!r}")
        if node.keywords:
            self.fail(f"{node.func.id}() takes positional arguments only")
        name = node.func.id
        if name == "rand":
            if node.args:
                self.fail("rand() takes no arguments (one uniform draw per synapse)")
            if self.rng is None:
                self.fail("rand() needs a random generator: pass rng=np.random.default_rng(seed)")
            return self.rng.random(self.shape)
        if name not in _FUNCTIONS:
            self.fail(f"unknown function {name!r}; known functions: "
                      f"{', '.join(sorted(_FUNCTIONS))}, rand")
        arity, function = _FUNCTIONS[name]
        if len(node.args) != arity:
            self.fail(f"{name}() takes {arity} argument(s), got {len(node.args)}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return function(*(np.asarray(self(arg)) for arg in node.args))


def _evaluate(evaluator: _Evaluator, tree: ast.Expression):
    try:
        return evaluator(tree)
    except RecursionError:
        evaluator.fail("the expression is nested too deeply")


def _parse(text: str) -> ast.Expression:
    if not isinstance(text, str):
        raise ConditionError(f"condition: expected a string such as 'abs(w) < 0.01', got {text!r}")
    try:
        return ast.parse(text.strip(), mode="eval")
    except (RecursionError, MemoryError):
        raise ConditionError(f"condition {_quote(text)}: the expression is nested too deeply") from None
    except SyntaxError as err:
        raise ConditionError(
            f"condition {_quote(text)}: syntax error at column {err.offset}: {err.msg}"
        ) from None


def evaluate_condition(condition: str, projection: Projection, *, source_alive=None,
                       target_alive=None, rng: np.random.Generator | None = None) -> np.ndarray:
    """Boolean mask of shape ``projection.shape``: where ``condition`` holds.

    Raises
    ------
    ConditionError
        Unknown variable or function (the message lists the known ones), forbidden syntax, or an
        expression that is not a condition (e.g. ``"w + 1"``).
    """
    variables = condition_variables(projection, source_alive, target_alive)
    return evaluate_mask(condition, variables, projection.shape, rng=rng)


def evaluate_mask(condition: str, variables: dict, shape: tuple, *,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Boolean mask of ``shape`` where ``condition`` holds over the given ``variables``.

    The general form of :func:`evaluate_condition`, for any set of named arrays (e.g. neuron
    variables): same grammar, same safety (parsed with :mod:`ast`, nothing executed).

    Parameters
    ----------
    condition : str
        Brian2-style condition (see the module docstring for the grammar).
    variables : dict of str to array_like
        The names the condition may use, each broadcastable to ``shape``.
    shape : tuple of int
        Shape of the result (and of ``rand()``'s draws).
    rng : numpy.random.Generator, optional
        Needed only if the condition calls ``rand()``.

    Raises
    ------
    ConditionError
        Unknown variable or function, forbidden syntax, or a value that is not true/false.
    """
    tree = _parse(condition)
    evaluator = _Evaluator(condition, variables, tuple(shape), rng)
    value = np.asarray(_evaluate(evaluator, tree))
    if value.dtype != bool:
        evaluator.fail("is not a condition: it must evaluate to true/false (e.g. use a comparison)")
    return np.broadcast_to(value, tuple(shape)).copy()


def _evaluate_values(expression, projection: Projection, mask: np.ndarray, *, source_alive,
                     target_alive, rng) -> np.ndarray:
    if isinstance(expression, str):
        tree = _parse(expression)
        variables = condition_variables(projection, source_alive, target_alive)
        value = _evaluate(_Evaluator(expression, variables, projection.shape, rng), tree)
    elif isinstance(expression, (int, float, np.number)) and not isinstance(expression, bool):
        value = float(expression)
    else:
        raise ConditionError(
            f"w: expected None (latent weight), a number or an expression string, got {expression!r}"
        )
    value = np.broadcast_to(np.asarray(value, dtype=np.float64), projection.shape)
    if not np.all(np.isfinite(value[mask])):
        raise ConditionError(f"w: {expression!r} gives non-finite weights for the regrown synapses")
    return value


def prune(projection: Projection, condition: str = "abs(w) < 0.01", *, source_alive=None,
          target_alive=None, rng: np.random.Generator | None = None) -> ConditionResult:
    """Remove the existing synapses where ``condition`` holds; latent weights and spines are kept.

    Parameters
    ----------
    projection : Projection
        Not modified.
    condition : str
        Brian2-style condition (see the module docstring).
    source_alive, target_alive : ndarray of bool, optional
        Alive masks of the two populations (enable ``alive_pre`` / ``alive_post``).
    rng : numpy.random.Generator, optional
        Needed only if the condition calls ``rand()``.
    """
    mask = evaluate_condition(condition, projection, source_alive=source_alive,
                              target_alive=target_alive, rng=rng) & projection.exists
    new = projection.copy()
    new.exists[mask] = False
    for name in ("upper_streak", "lower_streak", "shrink_streak", "regrowth_streak"):
        getattr(new.spine, name)[mask] = 0
    new.spine.upper_excess[mask] = 0.0
    new.spine.lower_excess[mask] = 0.0
    i, j = np.nonzero(mask)
    return ConditionResult(new, i.astype(np.int64), j.astype(np.int64))


def regrow(projection: Projection, condition: str, *, w=None, source_alive=None,
           target_alive=None, rng: np.random.Generator | None = None) -> ConditionResult:
    """Restore the absent synapses where ``condition`` holds.

    A synapse that exists already is never added twice (the structure holds one entry per pair).
    Regrown synapses keep their spine range and start from their latent weight, or from ``w``.
    When the alive masks are given, only synapses between alive neurons regrow (reviving a pruned
    neuron is the development rules' business).

    Parameters
    ----------
    projection : Projection
        Not modified.
    condition : str
        Brian2-style condition (see the module docstring).
    w : None, float or str
        Initial weight of the regrown synapses: None keeps the latent weight; a number, or an
        expression over the same variables (e.g. ``"0.1 * rand()"`` or ``"clip(w, lower, upper)"``).
    source_alive, target_alive : ndarray of bool, optional
        Alive masks of the two populations.
    rng : numpy.random.Generator, optional
        Needed only if the condition or ``w`` calls ``rand()``.
    """
    mask = evaluate_condition(condition, projection, source_alive=source_alive,
                              target_alive=target_alive, rng=rng) & ~projection.exists
    if source_alive is not None:
        mask &= np.asarray(source_alive, dtype=bool)[:, None]
    if target_alive is not None:
        mask &= np.asarray(target_alive, dtype=bool)[None, :]
    new = projection.copy()
    if w is not None:
        values = _evaluate_values(w, projection, mask, source_alive=source_alive,
                                  target_alive=target_alive, rng=rng)
        new.weight[mask] = values[mask]
    new.exists[mask] = True
    new.spine.regrowth_streak[mask] = 0
    i, j = np.nonzero(mask)
    return ConditionResult(new, i.astype(np.int64), j.astype(np.int64))
