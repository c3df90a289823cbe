"""Sphinx configuration for gramfree's documentation.

Build (what ``.ci/docs.sh`` runs, warnings as errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Nothing here reaches the network: no intersphinx, no remote images, and the gallery's
examples use the data sets that ship with scikit-learn.
"""

from __future__ import annotations

import os
import warnings

import gramfree

project = "gramfree"
author = "gramfree developers"
copyright = "gramfree developers"
version = release = gramfree.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.codeobj.json",
    "auto_examples/*.md5",
]
default_role = "literal"

# -- API reference ---------------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
# numpydoc's own class member tables would list scikit-learn's inherited methods
# (set_fit_request, ...) whose pages we do not generate; the class template lists the
# members documented here instead.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- gallery ---------------------------------------------------------------------------
# Examples live at the repository root (examples/, as scikit-learn's do): they are
# ordinary scripts a user runs with `python examples/plot_....py`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "show_memory": False,
    # "Examples using KernelClassifier" at the end of its API page.
    "doc_module": ("gramfree",),
    "backreferences_dir": "generated/backreferences",
}
# The examples end their figures with plt.show(), which under the gallery's off-screen
# Agg backend says it cannot show anything; the gallery saves the figures instead.
warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")

# -- HTML ------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"gramfree {release}"
html_static_path = ["_static"]
html_css_files = ["gramfree.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # The gallery pages give the whole width to their code and figures.
    "secondary_sidebar_items": {
        pattern: ["page-toc", "sourcelink"]
        for pattern in ("index", "api", "guide/*", "generated/*", "search", "genindex")
    }
    | {"auto_examples/*": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = True
html_last_updated_fmt = None


def _skip_inherited_from_dependencies(app, what, name, obj, skip, options):
    """Methods the estimators inherit from scikit-learn (``score``, ``set_fit_request``,
    ...) and the operator from scipy: documented there, with cross-references into those
    projects' own pages that this site does not have (no intersphinx: the build stays
    offline). api.rst says so."""
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module.split(".")[0] in ("sklearn", "scipy"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_inherited_from_dependencies)
