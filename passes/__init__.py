"""Analyses and transform passes over the nvmc IR."""

from .workload import NONMAC_KINDS, Workload, analyze

__all__ = ["NONMAC_KINDS", "Workload", "analyze"]
