"""docs/: the generated pages match the registries, every target and family has its page
section, and every relative link in the docs and the README resolves."""

from __future__ import annotations

import doctest
import re

import pytest

from conftest import REPO
from nvmc.report import docgen

DOCS = REPO / "docs"
FIX = "regenerate with: python -m nvmc.report.docgen"


@pytest.mark.parametrize("page", ["passes-reference.md", "json-schema.md"])
def test_generated_page_is_up_to_date(page):
    expected = docgen.PAGES[page]()
    actual = (DOCS / page).read_text(encoding="utf-8")
    assert actual == expected, f"docs/{page} is out of date: {FIX}"


def test_every_shipped_target_and_family_is_documented():
    from nvmc.backends.registry import _BUILTIN
    from nvmc.backends.target import TARGETS_DIR

    targets = (DOCS / "targets.md").read_text(encoding="utf-8")
    for path in sorted(TARGETS_DIR.glob("*.toml")):
        assert f"\n## {path.stem}\n" in targets, f"docs/targets.md has no section for target '{path.stem}': {FIX}"
    models = (DOCS / "cost-models.md").read_text(encoding="utf-8")
    for family in _BUILTIN:
        assert f"\n## {family}\n" in models, f"docs/cost-models.md has no section for family '{family}': {FIX}"


def test_docgen_check_mode(tmp_path):
    assert docgen.main(["--docs", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(docgen.PAGES)
    assert docgen.main(["--check", "--docs", str(tmp_path)]) == 0
    (tmp_path / "targets.md").write_text("stale")
    assert docgen.main(["--check", "--docs", str(tmp_path)]) == 1


def test_relative_links_resolve():
    pages = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to missing {target}"


def test_python_api_page_examples_run(monkeypatch):
    monkeypatch.chdir(REPO)
    result = doctest.testfile(str(DOCS / "python-api.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 10 and result.failed == 0
