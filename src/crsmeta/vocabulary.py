"""Canonical names of interventions and markers, found from the synonyms sources print.

The vocabularies are data shipped with the package (``src/crsmeta/data/interventions.yaml`` and
``markers.yaml``); within :func:`files_in_use` every lookup reads the files given instead (the
workflow's declared inputs). Names match case-insensitively and
ignore whitespace, hyphens and underscores ("IL 6", "il6" and "Il-6" are all IL-6). A name that
matches nothing is refused with the closest known names as suggestions, never guessed.
"""

from __future__ import annotations

import difflib
import enum
import re
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from crsmeta.data import data_file
from crsmeta.errors import InputError
from crsmeta.io import load_yaml

INTERVENTIONS_FILE = data_file("interventions.yaml")
MARKERS_FILE = data_file("markers.yaml")
_FILES_IN_USE: ContextVar[tuple[Path, Path]] = ContextVar(
    "vocabulary files", default=(INTERVENTIONS_FILE, MARKERS_FILE))

_IGNORED_IN_NAMES = re.compile(r"[\s\-_\u2010-\u2015]+")
_CO_INTERVENTION_SEPARATORS = re.compile(r"[;,+]")


@dataclass(frozen=True)
class Vocabulary:
    """Canonical names of one kind and the lookup from every normalised name or synonym."""

    kind: str
    path: Path
    canonical_names: tuple[str, ...]
    lookup: Mapping[str, str]
    spelled: Mapping[str, str]

    def canonical(self, name: str) -> str:
        """The canonical name for ``name``, or an InputError with the closest suggestions."""
        key = normalise_name(name)
        if key in self.lookup:
            return self.lookup[key]
        raise InputError(f"unknown {self.kind} '{name}'", expected=self._suggestion(key))

    def _suggestion(self, key: str) -> str:
        close = _best_per_name(difflib.get_close_matches(key, list(self.lookup), n=10, cutoff=0.6), self.lookup)
        where = f"or add it to {_display_path(self.path)}"
        if not close:
            return f"a known {self.kind} (one of: {', '.join(self.canonical_names)}); {where}"
        return f"a known {self.kind}, e.g. the closest: {', '.join(map(self._describe, close))}; {where}"

    def _describe(self, key: str) -> str:
        canonical = self.lookup[key]
        written = self.spelled[key]
        return canonical if written == canonical else f"{canonical} ({written})"


class ChangeScale(enum.StrEnum):
    """The scale a marker's change is measured on, given by its family in ``markers.yaml``."""

    LOG_RATIO = "log_ratio"
    """``log(post / pre)``: concentrations, which have a true zero; both values must be positive."""
    DIFFERENCE = "difference"
    """``post - pre`` in the canonical unit: temperature, whose °C has no true zero."""


@dataclass(frozen=True)
class MarkerInfo:
    """What the workflow knows about a canonical marker."""

    name: str
    modelled: bool
    reason: str | None
    unit: str | None
    family: str | None
    plausible_range: tuple[float, float] | None
    change_scale: ChangeScale | None


@dataclass(frozen=True)
class MarkerCatalogue:
    """The marker vocabulary, each marker's facts, and the unit families."""

    vocabulary: Vocabulary
    markers: Mapping[str, MarkerInfo]
    families: Mapping[str, Mapping[str, Any]]


def normalise_name(name: str) -> str:
    """The matching key of a name: NFKC, case-folded, without whitespace, hyphens, underscores."""
    text = unicodedata.normalize("NFKC", str(name)).casefold()
    return _IGNORED_IN_NAMES.sub("", text)


@contextmanager
def files_in_use(interventions: str | Path = INTERVENTIONS_FILE, markers: str | Path = MARKERS_FILE) -> Iterator[None]:
    """Within the block, every lookup without a path of its own reads these vocabulary files."""
    token = _FILES_IN_USE.set((Path(interventions), Path(markers)))
    try:
        yield
    finally:
        _FILES_IN_USE.reset(token)


def load_interventions(path: str | Path | None = None) -> Vocabulary:
    """The intervention vocabulary from ``path`` (default: the one in use, :func:`files_in_use`)."""
    return _interventions(Path(path) if path is not None else _FILES_IN_USE.get()[0])


def load_markers(path: str | Path | None = None) -> MarkerCatalogue:
    """The marker vocabulary, marker facts and unit families from ``path`` (default: the one in
    use, :func:`files_in_use`)."""
    return _markers(Path(path) if path is not None else _FILES_IN_USE.get()[1])


@lru_cache(maxsize=None)
def _interventions(path: Path) -> Vocabulary:
    entries = _section(load_yaml(path), "interventions", path)
    return _build_vocabulary("intervention", path, entries)


@lru_cache(maxsize=None)
def _markers(path: Path) -> MarkerCatalogue:
    document = load_yaml(path)
    entries = _section(document, "markers", path)
    families = _section(document, "families", path)
    vocabulary = _build_vocabulary("marker", path, entries)
    scales = {name: _family_scale(name, entry, path) for name, entry in families.items()}
    markers = {name: _marker_info(name, entry, scales, path) for name, entry in entries.items()}
    return MarkerCatalogue(vocabulary, markers, families)


def canonical_intervention(name: str) -> str:
    """Canonical intervention name for a name or synonym as printed."""
    return load_interventions().canonical(name)


def canonical_marker(name: str) -> str:
    """Canonical marker name for a name or synonym as printed."""
    return load_markers().vocabulary.canonical(name)


def canonical_co_interventions(text: str) -> tuple[str, ...]:
    """Canonical names of a list of co-interventions separated by ';', ',' or '+' (sorted, unique).

    Empty pieces (e.g. after a trailing separator) are skipped; an unknown name is an error.
    """
    pieces = (piece.strip() for piece in _CO_INTERVENTION_SEPARATORS.split(text or ""))
    return tuple(sorted({canonical_intervention(piece) for piece in pieces if piece}))


def marker_info(name: str) -> MarkerInfo:
    """Facts about a marker given by any of its names."""
    return load_markers().markers[canonical_marker(name)]


def is_modelled(marker: str) -> bool:
    """True if the marker's changes are modelled (a cytokine, acute-phase protein or temperature)."""
    return marker_info(marker).modelled


def change_scale(marker: str) -> ChangeScale:
    """The scale of a modelled marker's change (its family's ``change_scale`` in markers.yaml).

    An unknown marker, or one that is not modelled, is an InputError naming it and the vocabulary.
    """
    info = marker_info(marker)
    if info.change_scale is None:
        raise InputError(
            f"marker '{info.name}' is not modelled ({info.reason}) and has no change scale",
            study_file=_display_path(load_markers().vocabulary.path),
            expected="a modelled marker (a cytokine, acute-phase protein or temperature)",
        )
    return info.change_scale


def change_unit(marker: str) -> str:
    """The unit of a modelled marker's change: ``log_ratio``, or ``<canonical unit>_difference``
    (``degC_difference`` for temperature)."""
    if change_scale(marker) is ChangeScale.LOG_RATIO:
        return "log_ratio"
    return f"{marker_info(marker).unit}_difference"


def _best_per_name(keys: list[str], lookup: Mapping[str, str], limit: int = 3) -> list[str]:
    """The best-matching key of each canonical name, in order of closeness, at most ``limit``."""
    best: dict[str, str] = {}
    for key in keys:
        best.setdefault(lookup[key], key)
    return list(best.values())[:limit]


def _build_vocabulary(kind: str, path: Path, entries: Mapping[str, Any]) -> Vocabulary:
    lookup: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for canonical, entry in entries.items():
        for written in (canonical, *_synonyms(canonical, entry, path)):
            key = normalise_name(written)
            if lookup.setdefault(key, canonical) != canonical:
                raise InputError(
                    f"{kind} name '{written}' of '{canonical}' is already a name of '{lookup[key]}' "
                    f"(names match ignoring case, spaces, hyphens and underscores)",
                    study_file=path,
                    expected="every name and synonym to belong to one canonical name only",
                )
            spelled.setdefault(key, written)
    return Vocabulary(kind, path, tuple(entries), lookup, spelled)


def _synonyms(canonical: str, entry: Any, path: Path) -> list[str]:
    synonyms = entry.get("synonyms", []) if isinstance(entry, Mapping) else None
    if not isinstance(synonyms, list) or not all(isinstance(s, str) and s.strip() for s in synonyms):
        raise InputError(
            f"entry '{canonical}' has malformed synonyms",
            study_file=path,
            expected="a mapping with 'synonyms:' as a list of non-empty strings",
        )
    return synonyms


def _marker_info(name: str, entry: Mapping[str, Any], scales: Mapping[str, ChangeScale], path: Path) -> MarkerInfo:
    modelled = entry.get("modelled")
    if modelled is False:
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(f"marker '{name}' is not modelled but gives no reason", study_file=path,
                             expected="'reason:' for every entry with 'modelled: false'")
        return MarkerInfo(name, False, reason, None, None, None, None)
    if modelled is not True:
        raise InputError(f"marker '{name}' lacks 'modelled: true|false'", study_file=path,
                         expected="'modelled:' set to true or false")
    family, unit = entry.get("family"), entry.get("unit")
    if family not in scales or not isinstance(unit, str):
        raise InputError(f"marker '{name}' has no valid family or unit", study_file=path,
                         expected=f"'family:' one of {', '.join(scales)} and a 'unit:' string")
    return MarkerInfo(name, True, None, unit, family, _plausible_range(name, entry, path), scales[family])


def _family_scale(family: str, entry: Any, path: Path) -> ChangeScale:
    """A family's change scale, once its entry is checked (units.py reads its implausible_hints)."""
    entry = entry if isinstance(entry, Mapping) else {}
    scale = entry.get("change_scale")
    if scale not in tuple(ChangeScale):
        raise InputError(f"family '{family}' has no valid change_scale ({scale!r})", study_file=path,
                         expected=f"'change_scale:' one of {', '.join(ChangeScale)}")
    hints = entry.get("implausible_hints")
    if not isinstance(hints, Mapping) or not all(isinstance(hints.get(side), str) for side in ("below", "above")):
        raise InputError(f"family '{family}' has no implausible_hints", study_file=path,
                         expected="'implausible_hints:' with the texts 'below:' and 'above:' a plausible range")
    return ChangeScale(scale)


def _plausible_range(name: str, entry: Mapping[str, Any], path: Path) -> tuple[float, float]:
    bounds = entry.get("plausible_range")
    numeric = isinstance(bounds, list) and len(bounds) == 2 and all(
        isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in bounds
    )
    if not numeric or not bounds[0] < bounds[1]:
        raise InputError(f"marker '{name}' has a malformed plausible_range {bounds!r}", study_file=path,
                         expected="two numbers [low, high] with low < high (write 1.0e+7, not 1e7)")
    return float(bounds[0]), float(bounds[1])


def _section(document: Any, key: str, path: Path) -> Mapping[str, Any]:
    section = document.get(key) if isinstance(document, Mapping) else None
    if not isinstance(section, Mapping) or not section:
        raise InputError(f"no '{key}:' mapping", study_file=path, expected=f"a top-level '{key}:' mapping")
    return section


def _display_path(path: Path) -> str:
    """The path relative to the working directory (Snakemake's: the project) when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
