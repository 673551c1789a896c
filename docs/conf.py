"""Sphinx configuration of sb3-lsp's documentation: ``sphinx-build -W docs docs/_build/html``."""

import sb3_lsp

project = "sb3-lsp"
author = "the sb3-lsp developers"
release = version = sb3_lsp.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax", "sphinx.ext.viewcode", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

# The pages take their text from README.md and benchmarks/RESULTS.md (one source for both): those
# start their sections at "##" and link files of the repository, which are not pages here.
suppress_warnings = ["myst.header", "myst.xref_missing"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"sb3-lsp {release}"  # the pages' titles end with it
