"""The sizes nvmc handles, in one place: beyond them a count would leave int64 (or float64's
exact integers) and an error says so, instead of a number that wrapped around."""

MAX_ELEMENTS = 2**40   # elements of one tensor
MAX_COUNT = 2**53      # MACs, or ops of one kind, of one node (exact in float64; 1,024 such nodes fit int64)
MAX_BATCH = 1 << 16    # inferences per run (and devices, samples per device): larger models' totals stay in int64
