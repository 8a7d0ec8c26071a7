"""An out-of-tree nvmc pass, found by nvmc through the entry point in pyproject.toml."""

from dataclasses import dataclass

from nvmc.passes import Op, PatternPass, Var, register_pass


@register_pass("strip-identity", exact=True)
@dataclass(frozen=True)
class StripIdentity(PatternPass):
    """Remove Identity nodes: their readers read the Identity's input instead.

    1. Matches every Identity node.
    2. Left alone: an Identity whose result is a graph output (the name is the interface).

    Before:
        %a = Identity(%x) : f32[1,8]  // id
        %y = Relu(%a) : f32[1,8]  // relu
    After:
        %y = Relu(%x) : f32[1,8]  // relu
    """

    pattern = Op("Identity", Var("x"))

    def check(self, m, graph):
        return "its result is a graph output" if m.root.outputs[0] in graph.outputs else None

    def rewrite(self, m, rw):
        rw.bypass(m.root, m.value("x"))
