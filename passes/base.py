"""The pass API: ``Pass``, typed options, ``PassResult`` and the registry.

A pass is a frozen dataclass whose fields are its options, registered under a kebab-case
name and declared exact or approximate::

    @register_pass("fold-constants", exact=True)
    @dataclass(frozen=True)
    class FoldConstants(Pass):
        \"\"\"Evaluate nodes whose inputs are all constants. ...\"\"\"

        max_elements: int = option(1 << 20, min=0, help="largest result stored as a constant")

        def run(self, graph: Graph) -> PassResult: ...

Option names are the field names in kebab-case (``max_elements`` is ``max-elements`` in a
pipeline). Types are ``int``, ``float``, ``bool`` or ``str``; ``option()`` adds a range
(``min``/``max``, inclusive) or ``choices``. Values are checked when the pass is built, from
Python or from a pipeline string, so a pass never sees a value outside its declared range.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

from nvmc.ir.errors import NvmcError, did_you_mean
from nvmc.ir.graph import Graph
from nvmc.ir.options import Option, OptionValueError, format_value, show_value

_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")
OPTION_TYPES = (bool, int, float, str)


class PassError(NvmcError):
    """A pass cannot be built (unknown name, bad option) or failed while running."""


class OptionError(PassError):
    """An option value is of the wrong type or outside its declared range or choices."""


def option(default: Any, *, min: float | None = None, max: float | None = None,
           choices: Iterable[str] | None = None, help: str = "") -> Any:
    """A typed pass option: a dataclass field with a default and an optional range or choices."""
    meta = {"nvmc_option": OptionMeta(min=min, max=max, choices=tuple(choices) if choices else None, help=help)}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class OptionMeta:
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""


_TYPE_OF_KIND = {"bool": bool, "int": int, "float": float, "str": str, "choice": str}


@dataclass(frozen=True, kw_only=True)
class OptionSpec(Option):
    """One option of a registered pass, as ``nvmc passes`` lists it: an
    :class:`~nvmc.ir.options.Option` with its pipeline name and dataclass field."""

    name: str  # kebab-case, as written in a pipeline
    field: str  # the dataclass field

    @property
    def type(self) -> type:
        return _TYPE_OF_KIND[self.kind]

    @property
    def min(self) -> float | None:
        return self.minimum

    @property
    def max(self) -> float | None:
        return self.maximum

    def check(self, value: Any, owner: str = "") -> Any:
        """The value converted to the option's type; raises OptionError naming what is allowed.

        ``owner`` (a pass name) makes the message say whose option it is."""
        try:
            return super().check(value)
        except OptionValueError as e:
            who = f"option '{self.name}'" + (f" of '{owner}'" if owner else "")
            raise OptionError(f"{who} takes {e.allowed}, not {show_value(value)}{e.suggestion}") from None


@dataclass
class PassResult:
    """What a pass did. ``stats`` are counters (``nodes_rewritten``, ``bytes_saved``, ...);
    ``why_not`` lists (node name, reason) for the places the pass looked at and left alone;
    ``error`` is the numerical error an approximate pass measured, by metric."""

    changed: bool
    stats: dict[str, float] = field(default_factory=dict)
    why_not: list[tuple[str, str]] = field(default_factory=list)
    error: dict[str, float] = field(default_factory=dict)

    def merge(self, other: "PassResult") -> None:
        """Add ``other`` into this result (canonicalize sums its sub-passes)."""
        self.changed |= other.changed
        for k, v in other.stats.items():
            self.stats[k] = self.stats.get(k, 0) + v
        self.why_not.extend(other.why_not)
        self.error.update(other.error)


class Pass:
    """Base of every pass. Subclasses are frozen dataclasses registered with ``register_pass``."""

    name: ClassVar[str] = ""
    exact: ClassVar[bool] = True

    def __post_init__(self) -> None:
        for spec in options_of(type(self)):
            value = spec.check(getattr(self, spec.field), self.name)
            object.__setattr__(self, spec.field, value)

    def run(self, graph: Graph) -> PassResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:
        """The pass as a pipeline element, listing the options that differ from their defaults."""
        changed = [(s.name, getattr(self, s.field)) for s in options_of(type(self))
                   if getattr(self, s.field) != s.default]
        if not changed:
            return self.name
        return self.name + "{" + ",".join(f"{k}={format_value(v)}" for k, v in changed) + "}"


# ---------------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[Pass]] = {}


def register_pass(name: str, *, exact: bool):
    """Class decorator: register a ``Pass`` dataclass under a kebab-case ``name``."""
    if not _KEBAB.match(name):
        raise ValueError(f"pass name '{name}' is not kebab-case (like 'fuse-conv-bn')")

    def decorate(cls: type[Pass]) -> type[Pass]:
        if not (isinstance(cls, type) and issubclass(cls, Pass) and dataclasses.is_dataclass(cls)):
            raise TypeError(f"pass '{name}' must be a dataclass subclassing nvmc.passes.Pass")
        doc = (cls.__doc__ or "").strip()
        if not doc or doc.startswith(cls.__name__ + "("):  # dataclass writes 'Name(fields)' when none
            raise TypeError(f"pass '{name}' needs a docstring (summary, rules, IR before/after)")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"pass '{name}' is registered twice ({_REGISTRY[name].__module__} and {cls.__module__})")
        cls.name = name
        cls.exact = exact
        options_of(cls)  # checks the option declarations now, not at first use
        _REGISTRY[name] = cls
        return cls

    return decorate


def registered_passes() -> dict[str, type[Pass]]:
    """Every pass by name, built-in and from plugins, sorted by name."""
    from .plugins import load_plugins

    load_plugins()
    return dict(sorted(_REGISTRY.items()))


def get_pass(name: str) -> type[Pass]:
    passes = registered_passes()
    if name not in passes:
        from .plugins import plugin_failures

        hint = None
        if name in plugin_failures():
            hint = f"the plugin providing '{name}' failed to load: {plugin_failures()[name]}"
        raise PassError(f"unknown pass '{name}'{did_you_mean(name, passes)}",
                        hint=hint or "'nvmc passes' lists the available passes")
    return passes[name]


def make_pass(name: str, **options: Any) -> Pass:
    """Build the pass ``name`` with ``options`` (field names or kebab-case names)."""
    cls = get_pass(name)
    specs = {s.name: s for s in options_of(cls)}
    kwargs = {}
    for key, value in options.items():
        spec = specs.get(key.replace("_", "-"))
        if spec is None:
            raise OptionError(f"pass '{name}' has no option '{key}'{did_you_mean(key, specs)}",
                              hint=_options_hint(name, specs))
        kwargs[spec.field] = value
    return cls(**kwargs)


def _options_hint(name: str, specs: dict[str, OptionSpec]) -> str:
    return f"options of '{name}': {', '.join(specs)}" if specs else f"'{name}' takes no options"


def options_of(cls: type[Pass]) -> list[OptionSpec]:
    """The options of a pass class, in declaration order."""
    cached = cls.__dict__.get("_nvmc_options")
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind = hints.get(f.name)
        if kind not in OPTION_TYPES:
            raise TypeError(f"option '{f.name}' of {cls.__name__} has type {kind}; "
                            "options are bool, int, float or str")
        if f.default is dataclasses.MISSING:
            raise TypeError(f"option '{f.name}' of {cls.__name__} needs a default")
        meta = f.metadata.get("nvmc_option", OptionMeta())
        specs.append(OptionSpec(name=f.name.replace("_", "-"), field=f.name, default=f.default, help=meta.help,
                                kind="choice" if meta.choices else kind.__name__, choices=meta.choices or (),
                                minimum=meta.min, maximum=meta.max))
    type.__setattr__(cls, "_nvmc_options", specs)
    return specs


def summary_of(cls: type[Pass]) -> str:
    """The first line of a pass's docstring."""
    return (cls.__doc__ or "").strip().splitlines()[0]
