"""Shared helpers for the fuzz tests (tests/test_fuzz_*.py): see harness.py."""
