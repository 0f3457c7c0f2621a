"""Sphinx configuration of the cortexsim documentation (``make docs``; warnings are errors)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import cortexsim  # noqa: E402  (installed by make install; editable)

project = "cortexsim"
author = "the cortexsim developers"
copyright = "cortexsim developers"
version = release = cortexsim.__version__

extensions = ["sphinx.ext.autodoc", "numpydoc", "myst_parser", "sphinx.ext.mathjax", "sphinx.ext.viewcode"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
# members defined in each module (a module's __all__ may list what it re-exports from PyNN)
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False,
                           "ignore-module-all": True}
html_theme = "alabaster"
html_title = f"cortexsim {release}"
suppress_warnings = ["myst.header"]
nitpicky = False

# Modules that re-export a simulator's whole PyNN API (documented by their module docstring only).
API_WITHOUT_MEMBERS = {
    "cortexsim.backends.pynn_nest", "cortexsim.backends.pynn_brian2", "cortexsim.backends.brian2_standalone",
    "cortexsim.backends.brainscales", "cortexsim.backends.brainscales.standardmodels",
    "cortexsim.backends.brainscales.populations", "cortexsim.backends.brainscales.projections",
}


def _modules() -> dict[str, list[str]]:
    """Every module of the package, by layer, from pyproject.toml's package-dir mapping."""
    spec = importlib.util.spec_from_file_location("lint_imports", ROOT / ".ci" / "lint_imports.py")
    lint_imports = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lint_imports)
    layers = {}
    for package, folder in lint_imports.package_folders(ROOT).items():
        parts = package.split(".")
        layer = parts[1] if len(parts) > 1 else "cortexsim"
        names = [package] + [f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]
        layers.setdefault(layer, []).extend(n for n in names if n not in ("cortexsim.__main__",))
    return layers


TITLES = {"cortexsim": "Base layer and command line (cortexsim)", "protocols": "Protocols (cortexsim.protocols)",
          "analysis": "Analysis (cortexsim.analysis)", "models": "Models (cortexsim.models)",
          "backends": "Backends (cortexsim.backends)"}


def _write_api_pages(app) -> None:
    folder = Path(app.srcdir) / "api"
    folder.mkdir(exist_ok=True)
    index = ["API reference", "=============", "", "Generated from the docstrings, one page per layer (top to "
             "bottom as in :doc:`../architecture`).", "", ".. toctree::", "   :maxdepth: 1", ""]
    for layer in ("cortexsim", "protocols", "analysis", "models", "backends"):
        modules = _modules().get(layer, [])
        title = TITLES[layer]
        lines = [title, "=" * len(title), ""]
        for module in modules:
            importlib.import_module(module)
            lines += [module, "-" * len(module), "", f".. automodule:: {module}"]
            if module in API_WITHOUT_MEMBERS or module.endswith(".__init__"):
                lines.append("   :no-members:")
            elif any(other.startswith(module + ".") for other in modules) or module == "cortexsim":
                lines.append("   :no-members:")  # a package: its modules follow
            lines.append("")
        text = "\n".join(lines)
        path = folder / f"{layer}.rst"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        index.append(f"   {layer}")
    text = "\n".join(index) + "\n"
    if not (folder / "index.rst").exists() or (folder / "index.rst").read_text() != text:
        (folder / "index.rst").write_text(text)


def setup(app):
    app.connect("builder-inited", _write_api_pages)
