"""The documentation stays true to the code: cited references exist, the README states the contract."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("cortexsim", "models", "protocols", "analysis", "backends")


def test_every_cited_reference_section_exists_in_the_repository():
    """Code and docs cite "references §N": docs/references.md must have a section N."""
    sections = set(re.findall(r"^## (\d+)\.", (ROOT / "docs" / "references.md").read_text(), re.M))
    cited = {}
    for folder in (*PACKAGE_FOLDERS, "benchmarks", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md") and "_build" not in path.parts:
                for number in re.findall(r"references §(\d+)", path.read_text(encoding="utf-8")):
                    cited.setdefault(number, path)
    assert cited, "no citation found: the search itself is broken"
    missing = {n: str(p.relative_to(ROOT)) for n, p in cited.items() if n not in sections}
    assert not missing, f"cited but not in docs/references.md: {missing}"


def test_readme_architecture_names_every_layer_of_the_contract():
    """Every module or package of the layers contract appears in the README's architecture section."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Architecture"):]
    section = section[:section.index("\n## ", 4)] if "\n## " in section[4:] else section
    for layer in layers:
        for module in re.split(r"\s*[:|]\s*", layer):
            name = module.split(".")[-1]
            assert name in section, f"layer {module} is not described in the README's architecture section"
