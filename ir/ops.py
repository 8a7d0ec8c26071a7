"""Op definitions of the nvmc domain, xDSL-style: one declarative ``OpDef`` per op (they live in
nvmc.ir.dialect). An op declares, once:

* its operands (``Operand``), result count and attributes (``Attr``: type, default or
  required, allowed values), which :meth:`OpDef.check` verifies before the op's ``verify``
  (the op-specific invariants: the reason the node is malformed, or None);
* ``lower(node, graph)``: replace the node by ONNX nodes computing the same outputs under the
  same value names (nvmc.ir.lowering), so a transformed graph always runs in onnxruntime;
* its counting rules for the workload analysis (passes/workload.py): ``macs(analyzer, node)``
  -> (gemm_batch, M, N, K); ``counts``, non-MAC ops by kind (``NONMAC_KINDS``): a dict per
  output element or ``(analyzer, node, output_elements) -> counts``; ``precision(node)``, the
  activation bits of its MACs when the op sets them itself, else None; ``traits`` a cost
  model may read (``relu-net``: its non-MAC ops are a ReLU net's biases and activations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .graph import Graph, Node
from .kinds import NONMAC_KINDS
from .options import Option, OptionValueError

REQUIRED = object()  # an Attr default: the attribute must be given
_KINDS = {int: "int", float: "float", str: "str", list: "list"}


@dataclass(frozen=True)
class Operand:
    name: str
    optional: bool = False  # may be omitted ('') or left off the end
    variadic: bool = False  # the last operand only: zero or more of it
    const: bool = False     # must be a constant (weights fitted or transformed by a pass)


@dataclass(frozen=True)
class Attr:
    """An attribute: its Python type (int, float: an int is accepted, str or list), its default
    (REQUIRED: must be given; None: optional without one) and the values allowed, checked by the
    one option checker (nvmc.ir.options) that also checks pass options and target keys."""

    name: str
    type: type
    default: Any = REQUIRED
    choices: tuple = ()
    bounds: tuple[int, int] | None = None  # inclusive, for int attributes

    @property
    def option(self) -> Option:
        kind = "choice" if self.type is str and self.choices else _KINDS[self.type]
        lo, hi = self.bounds or (None, None)
        return Option(kind, choices=self.choices, minimum=lo, maximum=hi)

    def problem(self, node: Node) -> str | None:
        if self.name not in node.attrs:
            return f"needs the attribute '{self.name}'" if self.default is REQUIRED else None
        try:
            self.option.check(node.attrs[self.name])
        except OptionValueError as e:
            return f"{self.name}: {e}"
        return None


CountRule = dict[str, int] | Callable[[Any, Node, int], dict[str, int]]


@dataclass(frozen=True)
class OpDef:
    name: str
    doc: str
    operands: tuple[Operand, ...]
    verify: Callable[[Node, Graph], str | None]
    lower: Callable[[Node, Graph], None]
    attrs: tuple[Attr, ...] = ()
    results: int = 1
    macs: Callable[[Any, Node], tuple[int, int, int, int]] | None = None
    counts: CountRule | None = None  # None: no rule (the analysis counts 1 'other' per element)
    precision: Callable[[Node], int | None] | None = None
    traits: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = set(self.counts) - set(NONMAC_KINDS) if isinstance(self.counts, dict) else set()
        if unknown:
            raise ValueError(f"count rule of 'nvmc.{self.name}': unknown kinds {sorted(unknown)} "
                             f"(kinds: {', '.join(NONMAC_KINDS)})")

    @property
    def signature(self) -> str:
        """The operands as the op's messages spell them: ``(x, U, [bias], [u_scale])``."""
        return "(" + ", ".join(f"[{o.name}, ...]" if o.variadic else f"[{o.name}]" if o.optional else o.name
                               for o in self.operands) + ")"

    def attr(self, node: Node, key: str) -> Any:
        """The node's attribute ``key``, or its declared default."""
        return node.attrs.get(key, next(a.default for a in self.attrs if a.name == key))

    def check(self, node: Node, graph: Graph) -> str | None:
        """Why ``node`` is malformed: its declared operands and attributes first, then ``verify``."""
        n, fixed = len(node.inputs), [o for o in self.operands if not o.variadic]
        least = sum(not o.optional for o in fixed)
        if len(fixed) < len(self.operands):
            if n < least:
                return f"takes at least {least} inputs {self.signature}, has {n}"
        elif not least <= n <= len(fixed):
            return f"takes {self.signature}, has {n} input(s)"
        for i, v in enumerate(node.inputs):
            spec = self.operands[min(i, len(self.operands) - 1)]
            if not v and not spec.optional:
                return f"operand '{spec.name}' (input {i}) is omitted"
            if v and spec.const and not graph.is_const(v):
                return f"operand '{spec.name}' ('%{v}') must be a constant"
        if len(node.outputs) != self.results:
            return f"has {self.results} output(s), not {len(node.outputs)}"
        return next((p for p in (a.problem(node) for a in self.attrs) if p), None) or self.verify(node, graph)
