"""The one op classification of nvmc: what kind of work a node is, and which non-MAC op kinds
are simple or transcendental. The workload analysis (passes/workload.py) writes a node's kind
into its ``kind`` column; every cost-model family reads that column instead of keeping op
sets of its own, so that a view is free and a gather reads its rows on every target alike.

Kinds (``NODE_KINDS``, coded by their index):

  view         no work and no bytes: a new name for the same data (Reshape, Identity, ...)
               and nodes the QDQ rules fold (the workload's ``folded`` column)
  move         data movement: reads and writes its bytes, computes nothing (Transpose, Concat,
               Slice, Cast, Pad, Resize, ...)
  gather       reads the rows its indices select (Gather, GatherND, GatherElements): from a
               constant table only those rows (the workload's ``weight_read_bytes``)
  mac          a node with multiply-accumulates (``macs`` > 0)
  elementwise  per-element arithmetic (activations, Add/Mul/..., BatchNormalization, QDQ)
  reduction    arithmetic across elements (pooling, Reduce*, Softmax, normalisations, ArgMax)
  control      If / Loop / Scan: the subgraph's work is not counted
  other        no rule (another domain, or an op without a counting rule)
"""

NODE_KINDS = ("view", "move", "gather", "mac", "elementwise", "reduction", "control", "other")
KIND = {k: i for i, k in enumerate(NODE_KINDS)}

VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Size",
                      "Constant", "Optional", "OptionalGetElement"})
GATHER_OPS = frozenset({"Gather", "GatherElements", "GatherND"})
CONTROL_OPS = frozenset({"If", "Loop", "Scan"})
REDUCTION_OPS = frozenset({"MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
                           "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                           "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "ArgMax", "ArgMin", "TopK",
                           "CumSum", "Softmax", "LogSoftmax", "Hardmax", "InstanceNormalization",
                           "LayerNormalization", "GroupNormalization", "LpNormalization", "LRN", "Mean"})

# Non-MAC op kinds (the workload's op-count columns): those a simple ALU lane does in one step,
# and those it does not (a family prices them as ``transcendental_cost`` lane slots, or on
# units of their own).
SIMPLE_KINDS = ("add", "mul", "cmp", "other")
TRANSCENDENTAL_KINDS = ("div", "exp", "log", "sqrt", "pow", "tanh", "erf")
NONMAC_KINDS = ("add", "mul", "div", "cmp", "exp", "log", "sqrt", "pow", "tanh", "erf", "other")
