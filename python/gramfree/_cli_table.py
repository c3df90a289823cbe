"""The command line's tables: a CSV file (with or without a header row) or a 2-d .npy
array read into numbers, with errors that name the file, the column and the line; and the
columns of a table that a saved model's features are.

Numbers are parsed by numpy (``np.loadtxt``); only when that fails, or a column holds text
(a target of class names), does a second pass with the ``csv`` module walk the rows to find
and name the first bad cell, or check the table's shape before the text column is read.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import warnings
from collections.abc import Sequence

import numpy as np

# Cells of a target column that mean "no value", beside the empty cell.
_MISSING = ("nan",)
# Cells that mean "no value" in a column of numbers otherwise (spreadsheets', R's and
# pandas' spellings); in a column of class names they may be a class ("none").
_MISSING_AMONG_NUMBERS = ("na", "n/a", "nan", "none", "null", "-")
# Cells that say "no value" and nothing about a header: on line 1 of a header-less table a
# "?" above a number made the line a header, and its row was dropped in silence (a review).
_NO_VALUE = frozenset(("?", *_MISSING_AMONG_NUMBERS))
# A target of integers with at most this many distinct values is taken for class labels.
MAX_AUTO_CLASSES = 20


class TableError(ValueError):
    """A problem in the user's table or its options; the message names where."""


@dataclasses.dataclass(frozen=True)
class Table:
    """A table's columns before its cells are read: the header's names, or "0", "1", ...
    when it has none (.npy files never do); ``array`` holds a .npy file's data."""

    path: str
    names: tuple[str, ...]
    header: bool
    array: np.ndarray | None = None
    # Why line 1 was taken for a header where nothing but its cells said so (a note for the
    # user: pandas' default names are also a possible first row of data).
    guessed: str = ""

    @property
    def n_columns(self) -> int:
        return len(self.names)

    def column(self, j: int) -> str:
        """How messages name column ``j``."""
        return repr(self.names[j]) if self.header else f"index {j}"

    def line(self, number: int) -> str:
        """How messages name a line of the CSV file (1-based, as an editor shows it)."""
        return f"line {number}" + (", counting the header as line 1" if self.header else "")


def _is_number(cell: str) -> bool:
    if "_" in cell:  # Python's float() reads "1_000", numpy's parser does not
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _shortlist(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def open_table(path: str, header: bool | None = None, known: Sequence[Sequence[str]] = ()) -> Table:
    """The columns of a .npy or .csv file. A CSV file's first line is its header when
    ``header`` says so, or (``header=None``) when it is one of the ``known`` headers (a
    model's recorded columns: with or without its target) or looks like one
    (_looks_like_header)."""
    if path.lower().endswith(".npy"):  # F.NPY too: it was read as text and refused
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as exc:  # pickled objects, a damaged header
            raise TableError(f"{path}: not a .npy array of numbers or strings ({exc})") from None
        if not isinstance(data, np.ndarray):  # an .npz archive under another name
            data.close()
            raise TableError(f"{path}: expected a .npy array, found an .npz archive")
        if data.ndim != 2:
            raise TableError(f"{path}: expected a 2-d array, got shape {data.shape}")
        if data.dtype.kind not in "biufUS":
            raise TableError(f"{path}: expected numbers or strings, got dtype {data.dtype}")
        if data.shape[0] == 0:
            raise TableError(f"{path} has no rows")
        if data.shape[1] == 0:  # "has a single column" said the fit before
            raise TableError(f"{path} has no columns")
        if data.dtype.kind == "S":  # bytes: read as text, as a CSV's cells are
            try:
                data = np.char.decode(data, "utf-8")
            except UnicodeDecodeError as exc:
                raise TableError(f"{path}: byte strings that are not UTF-8 text ({exc})") from None
        return Table(path, tuple(str(j) for j in range(data.shape[1])), False, data)
    with _open_text(path) as fh, _as_table_error(path):
        reader = csv.reader(fh)
        first = next(reader, None)
        second = next((row for row in reader if row), None)
    if first is None:
        raise TableError(f"{path} is empty")
    if not first:
        raise TableError(f"{path}: line 1 is blank (expected a header row or data)")
    cells = [c.strip() for c in first]
    guessed = ""
    if header is None:
        if any(list(cells) == list(names) for names in known):
            header = True
        elif _pandas_names(cells, second):
            header = True
            guessed = (
                f"line 1 of {path} ({', '.join(cells[:4])}{', ...' if len(cells) > 4 else ''}) "
                "was read as pandas' default column names; pass --no-header if it is data"
            )
        else:
            header = _looks_like_header(cells, second)
    if not header:
        return Table(path, tuple(str(j) for j in range(len(cells))), False)
    for j, name in enumerate(cells):
        if not name:
            raise TableError(f"{path}: the header's column {j + 1} (counted from 1) has no name")
    repeated = sorted({n for n in cells if cells.count(n) > 1})
    if repeated:
        raise TableError(f"{path}: the header repeats column name(s) {_shortlist(repeated)}")
    return Table(path, tuple(cells), True, guessed=guessed)


# Columns from which a first line of 0, 1, ..., k - 1 is pandas' default names rather than
# data: fewer made a one- or two-column table starting 0 (or 0, 1), as a grid written with
# %g does, lose its first row (a review).
PANDAS_NAMES_MIN_COLUMNS = 4


def _pandas_names(first: list[str], second: list[str] | None) -> bool:
    """A DataFrame without names written by to_csv(index=False) has the header 0, 1, ...,
    k - 1: it was read as a row of data, which gave a classifier a phantom class (digits:
    class 64) and predict a line too many (a review). Taken for a header from
    PANDAS_NAMES_MIN_COLUMNS columns, with as many cells on the next line."""
    k = len(first)
    return (
        k >= PANDAS_NAMES_MIN_COLUMNS
        and second is not None
        and len(second) == k
        and [c.strip() for c in first] == [str(j) for j in range(k)]
    )


def _looks_like_header(first: list[str], second: list[str] | None) -> bool:
    """A first line is a header when a column has text there and a number below it (as
    csv.Sniffer.has_header reasons); a table of one line, when none of its cells is a
    number. A column of class names under its name says nothing either way, nor does a
    missing-value marker ("?", "NA": _NO_VALUE)."""
    if second is None or len(second) != len(first):
        return not any(_is_number(c) for c in first if c)
    return any(
        c and c.lower() not in _NO_VALUE and not _is_number(c) and _is_number(d.strip())
        for c, d in zip(first, second)
    )


def _open_text(path: str):
    # utf-8-sig: a spreadsheet's byte-order mark is not part of the first name.
    return open(path, newline="", encoding="utf-8-sig")


def column_index(table: Table, spec: str | None, option: str = "--target") -> int:
    """The column ``spec`` names (a header name, else an index, negative from the end);
    None: the last column."""
    n = table.n_columns
    if spec is None:
        return n - 1
    if spec in table.names:
        return table.names.index(spec)
    try:
        index = int(spec)
    except ValueError:
        known = (
            f"its columns are {_shortlist(table.names)}"
            if table.header
            else "it has no header row: give a column index"
        )
        raise TableError(f"{option} {spec!r} is not a column of {table.path} ({known})") from None
    if not -n <= index < n:
        raise TableError(f"{option} {index} is out of range for the {n} columns of {table.path}")
    return index % n


def model_columns(
    table: Table,
    n_features: int,
    *,
    features: Sequence[str] | None,
    target: int | None,
    target_name: str | None,
) -> list[int]:
    """The columns of ``table`` that are a model's ``n_features`` features, in order.

    By name when the table has a header and the model knows its features' names: the
    target column, if the table has one, is left out; any other missing or extra column is
    an error naming them. Otherwise by position: every column, or every column but the
    target's (index ``target`` of the training table) when there is one more.
    """
    if table.header and features is not None:
        known = set(features)
        missing = [f for f in features if f not in table.names]
        extra = [c for c in table.names if c not in known and c != target_name]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"it lacks {_shortlist(missing)}")
            if extra:
                hint = "" if target_name is not None else " (a target? name it with --target)"
                parts.append(f"it has {_shortlist(extra)} that the model was not fitted on{hint}")
            raise TableError(
                f"{table.path}'s columns do not match the model's features: {'; '.join(parts)}"
            )
        return [table.names.index(f) for f in features]
    k = table.n_columns
    if k == n_features:
        return list(range(k))
    if k == n_features + 1 and target is not None and target < k:
        return [j for j in range(k) if j != target]
    expected = f"{n_features} feature columns"
    if target is not None:
        named = f" {target_name!r}" if target_name is not None else ""
        expected += f", or {n_features + 1} with the target{named} at column index {target}"
    elif k == n_features + 1:
        expected += "; name the column to leave out with --target"
    raise TableError(f"{table.path} has {k} columns, the model expects {expected}")


def read_columns(
    table: Table, features: Sequence[int], target: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(X, y): the ``features`` columns as float64, and the ``target`` column as float64 if
    every cell is a number, else as strings (class names); y is None without a target.
    Raises TableError naming the column and line of the first missing, non-numeric or
    non-finite feature value, or missing target value."""
    if table.array is not None:
        return _read_npy(table, features, target)
    data = _load_numbers(table)
    if data is not None and np.isfinite(data[:, features]).all():
        X = np.ascontiguousarray(data[:, features])
        y = None if target is None else data[:, target]
    else:
        _check_numbers(table, features)  # raises naming the cell, unless only text is left
        X = _loadtxt(table, usecols=list(features), dtype=np.float64)
        y = None if target is None else _loadtxt(table, usecols=[target], dtype=str)[:, 0]
    if y is not None and target is not None:
        y = _target_values(table, target, y)
    return X, y


def _loadtxt(table: Table, **kwargs) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked
        return np.loadtxt(
            table.path,
            delimiter=",",
            skiprows=int(table.header),
            comments=None,
            quotechar='"',
            ndmin=2,
            encoding="utf-8-sig",
            **kwargs,
        )


def _load_numbers(table: Table) -> np.ndarray | None:
    """The whole table as float64, or None when a cell is no number or the rows' widths
    differ from the header's (the slow pass then says where)."""
    try:
        data = _loadtxt(table, dtype=np.float64)
    except ValueError:
        return None
    if data.shape[0] == 0 or data.shape[1] != table.n_columns:
        return None
    return data


def _rows(table: Table):
    """(line number, cells) of each data row; blank lines are skipped (as np.loadtxt
    does), a row of another width than the header's is an error."""
    width = table.n_columns
    with _open_text(table.path) as fh, _as_table_error(table.path):
        reader = csv.reader(fh)
        if table.header:
            next(reader, None)
        for row in reader:
            if not row:
                continue
            if len(row) != width:
                first = "the header" if table.header else "line 1"
                raise TableError(
                    f"{table.path}: line {reader.line_num} has {len(row)} cells, {first} has "
                    f"{width}"
                )
            yield reader.line_num, row


@contextlib.contextmanager
def _as_table_error(path: str):
    """The csv module's and the decoder's errors, which name no file, as TableError."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise TableError(
            f"{path} is not a UTF-8 text (CSV) file ({exc.reason} at byte {exc.start})"
        ) from None
    except csv.Error as exc:
        raise TableError(f"{path}: {exc}") from None


def _check_numbers(table: Table, columns: Sequence[int]) -> None:
    """The slow pass: every row has the table's width and a finite number in each of
    ``columns``, else TableError naming the first bad cell."""
    n_rows = 0
    for line, row in _rows(table):
        n_rows += 1
        for j in columns:
            cell = row[j].strip()
            value = float(cell) if _is_number(cell) else None
            if not cell or (value is not None and math.isnan(value)):
                raise TableError(
                    f"{table.path}: missing value in column {table.column(j)} ({table.line(line)})"
                )
            if value is None:
                counting = " (counting the header as line 1)" if table.header else ""
                raise TableError(
                    f"{table.path}: column {table.column(j)} is not numeric: line {line} has "
                    f"{cell!r}{counting}"
                )
            if math.isinf(value):
                raise TableError(
                    f"{table.path}: column {table.column(j)} has the non-finite value {cell!r} "
                    f"({table.line(line)})"
                )
    if n_rows == 0:
        raise TableError(f"{table.path} has no data rows")


def _target_values(table: Table, target: int, y: np.ndarray) -> np.ndarray:
    """The target as float64 when every value is a number, else as class names; a missing
    value is an error naming its line."""
    if y.dtype.kind == "f":
        if np.isfinite(y).all():
            return y
    else:
        y = np.char.strip(y.astype(str))
        lower = np.char.lower(y)
        # Numbers with "NA" or "None" among them are a numeric target with gaps, not ~200
        # class names (a review: a regression became a classification of 190 classes).
        among_numbers = all(_is_number(v) or v in _MISSING_AMONG_NUMBERS for v in lower)
        missing = _MISSING_AMONG_NUMBERS if among_numbers else _MISSING
        if not (y == "").any() and not np.isin(lower, missing).any():
            return y
    for line, row in _rows(table):
        cell = row[target].strip()
        if not cell or cell.lower() in (_MISSING if y.dtype.kind == "f" else missing):
            what = "missing value"
        elif y.dtype.kind == "f" and not math.isfinite(float(cell)):
            what = f"non-finite value {cell!r}"
        else:
            continue
        raise TableError(
            f"{table.path}: {what} in the target column {table.column(target)} ({table.line(line)})"
        )
    raise TableError(f"{table.path}: the target column {table.column(target)} has a bad value")


def _read_npy(table: Table, features: Sequence[int], target: int | None):
    data = table.array
    assert data is not None  # read_columns' branch for .npy tables
    try:
        X = data[:, list(features)].astype(np.float64)
    except ValueError:  # a string array: find the cell
        for j in features:
            for i, cell in enumerate(data[:, j]):
                if not _is_number(str(cell)):
                    raise TableError(
                        f"{table.path}: column index {j} is not numeric: row index {i} has "
                        f"{str(cell)!r}"
                    ) from None
        raise
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        i, k = bad[0]
        what = "missing value (NaN)" if np.isnan(X[i, k]) else f"non-finite value {X[i, k]}"
        raise TableError(f"{table.path}: {what} in column index {features[k]}, row index {i}")
    if target is None:
        return X, None
    y = data[:, target]
    if y.dtype.kind == "U":
        # Numbers stored as text are numbers, and "NA" among them a missing value, as in
        # a CSV (_target_values; a review: diabetes as a string .npy became a
        # classification of 214 classes).
        cells = np.char.lower(np.char.strip(y))
        if all(_is_number(v) or v in _MISSING_AMONG_NUMBERS for v in cells):
            gaps = np.isin(cells, list(_MISSING_AMONG_NUMBERS))
            if gaps.any():
                i = int(np.argmax(gaps))
                raise TableError(
                    f"{table.path}: missing value {str(y[i]).strip()!r} in the target column "
                    f"index {target}, row index {i}"
                )
            y = np.char.strip(y).astype(np.float64)
    if y.dtype.kind in "biuf":
        y = y.astype(np.float64)
        missing, what = ~np.isfinite(y), "missing value (NaN or inf)"
    else:
        missing, what = np.char.str_len(np.char.strip(y)) == 0, "missing value (empty)"
    if missing.any():
        i = int(np.argmax(missing))
        raise TableError(f"{table.path}: {what} in the target column index {target}, row index {i}")
    return X, y


def task_and_target(
    requested: str, y: np.ndarray, table: Table, target: int
) -> tuple[str, np.ndarray]:
    """The task ("classification" or "regression"; "auto": classification for text or for
    integers with at most MAX_AUTO_CLASSES distinct values) and its target: class labels
    (int64 or names) or float64 values."""
    numeric = y.dtype.kind == "f"
    integers = numeric and bool(np.all(y == np.round(y))) and np.abs(y).max() < 2**53
    task = requested
    if task == "auto":
        few = integers and len(np.unique(y)) <= MAX_AUTO_CLASSES
        task = "classification" if few or not numeric else "regression"
    if task == "regression":
        if not numeric:
            example = next(v for v in y if not _is_number(v))
            raise TableError(
                f"--task regression needs a numeric target: column {table.column(target)} of "
                f"{table.path} holds {str(example)!r}"
            )
        return task, y
    if not numeric:
        return task, y
    written = _written_labels(table, target, y)
    if written is not None:
        return task, written
    return task, (y.astype(np.int64) if integers else y)


def _written_labels(table: Table, target: int, y: np.ndarray) -> np.ndarray | None:
    """A numeric target's cells as written, where some cell is not how its value prints
    (``int`` for whole values, else ``repr``): "02139", "+1" or "1.0" are class names,
    which read as numbers were predicted as 2139, 1 or 1 (a review: ZIP codes; pandas
    reads them as numbers too, the Python API keeps the strings it is given). None for
    a .npy table, whose numbers have no text, or where every cell prints as written."""
    if table.array is not None:
        return None
    cells = np.array([row[target].strip() for _, row in _rows(table)])
    printed = np.array([str(int(v)) if v == int(v) else repr(float(v)) for v in y])
    return None if np.array_equal(cells, printed) else cells
