"""docs/passes.md: its example is the real plugin pass, and its test snippet passes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from nvmc.passes import base as pass_base

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "passes.md").read_text()
PLUGIN = REPO / "examples" / "plugin" / "nvmc_example_plugin" / "__init__.py"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


def test_the_guide_is_short():
    code = blocks("python")[:2] + blocks("toml")[:1]
    assert sum(len([line for line in b.splitlines() if line.strip()]) for b in code) < 40


def test_the_guide_shows_the_plugin_pass_line_for_line():
    source = PLUGIN.read_text().splitlines()
    position = 0
    for line in blocks("python")[0].splitlines():
        if not line.strip():
            continue
        try:
            position = source.index(line, position) + 1
        except ValueError:
            if line.strip().startswith('"""'):  # the shortened docstring: its first line must match
                assert any(s.strip().startswith(line.strip()[:-3]) for s in source), line
                continue
            pytest.fail(f"docs/passes.md shows a line the plugin does not have, in that order: {line!r}")


@pytest.fixture()
def plugin_registered(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN.parent.parent))
    import nvmc_example_plugin  # noqa: F401  (registers strip-identity)

    yield
    pass_base._REGISTRY.pop("strip-identity", None)
    sys.modules.pop("nvmc_example_plugin", None)


def test_the_guide_test_snippet_passes(plugin_registered):
    namespace: dict = {}
    exec(compile(blocks("python")[1], "docs/passes.md", "exec"), namespace)
    namespace["test_strip_identity"]()
