"""The data files the package reads: the study file schema, the vocabularies, the ASTCT grade mapping.

They ship inside the package (package data, found with importlib.resources), so an installed
crsmeta needs no clone of its repository. This directory is the one copy of each file: the
workflow declares these same paths as the inputs of the rules that read them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def data_file(name: str) -> Path:
    """The path of one of the package's data files, e.g. ``data_file("markers.yaml")``.

    pip installs a package as plain files, so the resource is a file on disk that Snakemake can
    track as an input.
    """
    return Path(str(resources.files(__name__).joinpath(name)))
