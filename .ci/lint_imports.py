"""Check the layer contracts of ``pyproject.toml`` with import-linter (``lint-imports``).

The package ``cortexsim`` is assembled from top-level folders (``[tool.setuptools] package-dir``),
which import-linter cannot follow in an editable install. This script builds the package as a tree
of symbolic links in a temporary folder, exactly as ``package-dir`` maps it, and runs
``lint-imports`` on that tree with this repository's ``pyproject.toml``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_folders(root: Path = ROOT) -> dict[str, Path]:
    """Every package of ``pyproject.toml`` and the folder it comes from (``package-dir`` mapping)."""
    settings = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping, folders = settings["package-dir"], {}
    for package in settings["packages"]:
        # the folder of a package: its own package-dir entry, else its parent's folder + its last name
        parts = package.split(".")
        for depth in range(len(parts), 0, -1):
            prefix = ".".join(parts[:depth])
            if prefix in mapping:
                folders[package] = root / mapping[prefix] / Path(*parts[depth:])
                break
    return folders


def build_tree(target: Path) -> None:
    """The package as symbolic links below ``target``, laid out as ``package-dir`` maps it."""
    for package, source in package_folders(ROOT).items():
        destination = target / Path(*package.split("."))
        destination.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            (destination / module.name).symlink_to(module)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cortexsim-layers-") as tmp:
        build_tree(Path(tmp))
        env = dict(os.environ, PYTHONPATH=tmp)
        # run from the tree: lint-imports puts its working directory first on sys.path
        command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo",
                   str(ROOT / "pyproject.toml")]
        return subprocess.call(command, cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
