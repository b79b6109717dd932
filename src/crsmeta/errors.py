"""The exception type for bad input, with a message that says where and what was expected (and
its group, for several problems found in one pass)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class InputError(ValueError):
    """Bad input in a study file or data table.

    The message says where the curator must look: for a value written in the study file, the
    file, the line and the key (``cases.measurements.IL6_pre.unit``); for a cell of a data table,
    the study file, the data file, the row and the column. Then what was expected.
    """

    def __init__(
        self,
        message: str,
        *,
        study_file: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
        data_file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.problem = message
        self.study_file = str(study_file) if study_file is not None else None
        self.line = line
        self.key = key
        self.data_file = str(data_file) if data_file is not None else None
        self.row = row
        self.column = column
        self.expected = expected
        super().__init__(self._format())

    def _format(self) -> str:
        where = [self.study_file] if self.study_file else []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.key is not None:
            where.append(f"key '{self.key}'")
        if self.data_file:
            where.append(self.data_file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = self.problem
        if self.expected:
            text = f"{text}; expected {self.expected}"
        return f"{', '.join(where)}: {text}" if where else text

    def located(
        self,
        *,
        study_file: str | Path | None = None,
        line: int | None = None,
        key: str | None = None,
        data_file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> "InputError":
        """The same error with the location filled in where it was not known yet."""
        return InputError(
            self.problem,
            study_file=self.study_file or study_file,
            line=self.line if self.line is not None else line,
            key=self.key or key,
            data_file=self.data_file or data_file,
            row=self.row if self.row is not None else row,
            column=self.column or column,
            expected=self.expected,
        )


class InputErrors(InputError):
    """Several independent problems found in one pass (every unexpected column of a header, every
    bad row of a table).

    It reads, and is located, as its first problem, so a stage that stops at the first error says
    what it said before; ``problems`` holds them all, for ``crsmeta check``.
    """

    def __init__(self, problems: Sequence[InputError]) -> None:
        first = problems[0]
        super().__init__(
            first.problem,
            study_file=first.study_file,
            line=first.line,
            key=first.key,
            data_file=first.data_file,
            row=first.row,
            column=first.column,
            expected=first.expected,
        )
        self.problems = tuple(problems)


def raise_all(problems: Sequence[InputError]) -> None:
    """Raise the problems found (the one itself if there is one, else together), if any."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise InputErrors(problems)
