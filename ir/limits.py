"""The sizes nvmc handles, in one place: beyond them a count would leave int64 (or float64's
exact integers) and an error says so, instead of a number that wrapped around."""

MAX_ELEMENTS = 2**40   # elements of one tensor
MAX_COUNT = 2**53      # MACs, or ops of one kind, of one node (exact in float64; 1,024 such nodes fit int64)
MAX_BATCH = 1 << 16    # inferences per run (and devices, samples per device): larger models' totals stay in int64

MAX_TOML_KEY_PARTS = 32  # parts of one dotted TOML key (a.b.c = 1, [a.b.c]): tomllib takes time quadratic in them

_TOML_PART = r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[A-Za-z0-9_-]+'
_TOML_DOTTED = None


def toml_key_problem(text: str) -> int | None:
    """The line of the first dotted key of more than MAX_TOML_KEY_PARTS parts in a TOML text,
    else None. tomllib takes seconds for a key of 8,000 parts and hours for one of a
    million (a few MiB): check a file with this before parsing it. Linear in the text
    (strings and comments are skipped whole; possessive matching never backtracks)."""
    import re

    global _TOML_DOTTED
    if _TOML_DOTTED is None:
        _TOML_DOTTED = re.compile(rf"(?:{_TOML_PART})(?:[ \t]*\.[ \t]*(?:{_TOML_PART}))*+")
    if text.count(".") <= MAX_TOML_KEY_PARTS:
        return None
    for m in _TOML_DOTTED.finditer(text):
        if m.end() - m.start() > 2 * MAX_TOML_KEY_PARTS and text.count(".", m.start(), m.end()) >= MAX_TOML_KEY_PARTS:
            parts = sum(1 for _ in zip(range(MAX_TOML_KEY_PARTS + 1), re.finditer(_TOML_PART, m.group())))
            if parts > MAX_TOML_KEY_PARTS:
                return text.count("\n", 0, m.start()) + 1
    return None
