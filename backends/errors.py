"""Errors of the backends: bad target files, bad technology data, ops a cost model cannot cost.

All are ``NvmcError``s, so the CLI prints their one-line rendering and exits with code 2.
A mapping that is valid input but does not fit the hardware is *not* an error: it is an
``Estimate`` with ``ok=False`` and a reason.
"""

from __future__ import annotations

from nvmc.ir.errors import NvmcError


class TargetError(NvmcError):
    """A target description (file, name, --set override, --iso choice) is wrong."""


class TechLibError(TargetError):
    """The technology library's data is malformed (a number without source, a bad table)."""


class CostModelError(NvmcError):
    """A cost model cannot estimate this workload."""


class UnsupportedOpError(CostModelError):
    """A node whose op the chosen target cannot cost; the message names the node and op."""
