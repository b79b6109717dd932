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


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file with the safe loader: tags such as ``!!python/object`` are refused."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise InputError("file not found", study_file=path, expected="an existing YAML file") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        column = str(mark.column + 1) if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(
            f"malformed YAML ({problem})",
            study_file=path,
            row=row,
            column=column,
            expected="plain YAML (mappings, lists, strings, numbers) without tags",
        ) from error


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
