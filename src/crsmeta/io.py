"""Reading study files and tables safely, and writing outputs atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from crsmeta.errors import InputError

OUTPUT_MODE = 0o644
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t"}
SPREADSHEET_SUFFIXES = {".xlsx"}
KeyPath = tuple[str | int, ...]


class _SafeLoaderDatesAsText(yaml.SafeLoader):
    """The safe loader without YAML's implicit timestamps: ``published: 2024-05-14`` stays the
    text written, so a date is checked (and an impossible one such as 2024-02-30 reported at its
    key and line) by the schema and :mod:`crsmeta.studies`, not turned into a ``datetime`` or an
    exception by the parser."""


_SafeLoaderDatesAsText.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file with the safe loader: tags such as ``!!python/object`` are refused, and
    dates stay text."""
    return load_yaml_with_lines(path)[0]


def load_yaml_with_lines(path: str | Path) -> tuple[Any, dict[KeyPath, int]]:
    """Parse a YAML file as :func:`load_yaml` does, with the line of every key and list item.

    The lines are the parser's own marks (1-based), keyed by the path to the value, e.g.
    ``("cases", "measurements", "IL6_pre", "unit")`` or ``("unit_factors", 0)``; the empty path
    is the document itself.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise InputError("file not found", study_file=path, expected="an existing YAML file") from error
    loader = _SafeLoaderDatesAsText(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        raise _malformed_yaml(path, error) from error
    finally:
        loader.dispose()
    return data, ({(): node.start_mark.line + 1} | _key_lines(node)) if node is not None else {}


def _key_lines(node: yaml.Node, path: KeyPath = (), inside: frozenset[int] = frozenset()) -> dict[KeyPath, int]:
    """The line of every key and list item below ``node`` (an alias is not followed into itself)."""
    inside = inside | {id(node)}
    lines = {}
    for child_path, line, child in _entries(node, path):
        lines[child_path] = line
        if id(child) not in inside:
            lines.update(_key_lines(child, child_path, inside))
    return lines


def _entries(node: yaml.Node, path: KeyPath) -> list[tuple[KeyPath, int, yaml.Node]]:
    """(path, line of the key or item, value node) of a mapping's scalar keys or a list's items."""
    if isinstance(node, yaml.MappingNode):
        return [
            ((*path, key.value), key.start_mark.line + 1, value)
            for key, value in node.value
            if isinstance(key, yaml.ScalarNode)
        ]
    if isinstance(node, yaml.SequenceNode):
        return [((*path, index), item.start_mark.line + 1, item) for index, item in enumerate(node.value)]
    return []


def _malformed_yaml(path: Path, error: yaml.YAMLError) -> InputError:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    at = f" at character {mark.column + 1}" if mark is not None else ""
    return InputError(
        f"malformed YAML{at} ({problem})",
        study_file=path,
        line=mark.line + 1 if mark is not None else None,
        expected="plain YAML (mappings, lists, strings, numbers) without tags",
    )


def read_table(path: str | Path, *, sheet: str | None = None) -> pd.DataFrame:
    """Read a CSV, TSV or XLSX table with every cell as a string (empty cells as '').

    Nothing is converted here: the harmonisation step parses each cell and reports the cell at
    fault. The index is the row number a person sees in the file (header = row 1).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        frame = pd.read_csv(
            path, sep=TABLE_SUFFIXES[suffix], dtype=str, keep_default_na=False, encoding="utf-8"
        )
    elif suffix in SPREADSHEET_SUFFIXES:
        frame = pd.read_excel(path, sheet_name=sheet or 0, dtype=str, keep_default_na=False)
    else:
        raise InputError(
            f"cannot read a '{suffix}' file",
            data_file=path,
            expected="a .csv, .tsv or .xlsx table",
        )
    frame.columns = [str(column).strip() for column in frame.columns]
    frame = frame.map(lambda cell: cell.strip() if isinstance(cell, str) else cell)
    frame.index = range(2, len(frame) + 2)
    return frame


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only if the block succeeds.

    A failed or interrupted write leaves no partial file behind. The file is made readable by
    all (mkstemp creates it private), as outputs are meant to be shared.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, OUTPUT_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_tsv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a TSV atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as temporary:
        frame.to_csv(temporary, sep="\t", index=False, lineterminator="\n")


def write_text(text: str, path: str | Path) -> None:
    """Write a UTF-8 text file atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def read_tsv(path: str | Path) -> pd.DataFrame:
    """Read a TSV written by :func:`write_tsv`, keeping every cell as a string."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def write_netcdf(idata: Any, path: str | Path) -> None:
    """Write an ArviZ InferenceData atomically (netCDF: zarr 3 breaks ``to_zarr`` here)."""
    with atomic_output(path) as temporary:
        idata.to_netcdf(str(temporary))


def files_hash(paths: Iterable[str | Path]) -> str:
    """A short SHA-256 of the files' bytes, in order: stamps a fit with the data it saw."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]
