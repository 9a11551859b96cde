"""Readers for the raw files: the paper's rating files, its KG files and RecBole atomic files.

Every reader parses with pandas' C engine and turns each problem it finds into a DataError
naming the file, the line and the offending text, so a bad input costs the user one readable
line instead of a traceback. Line numbers are only worked out on the error path.
"""

import codecs
import csv
import dataclasses
import errno
import io
import os
import pathlib
import re
from typing import Iterator

import numpy as np
import pandas as pd

from data_prep import DataError

ITEM_MAP_FILE = "item_index2entity_id.txt"
KG_FILE = "kg.txt"

_SEPARATOR_NAMES = {"\t": "tab", ";": "';'", "::": "'::'"}
# Far longer than any line of a real rating, item map or KG file: a file without line ends
# fails after this much is read, not once the whole of it fills the memory.
MAX_LINE_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class RatingFormat:
    """Layout of one paper dataset's raw rating file (the authors' RATING_FILE_NAME, SEP, THRESHOLD).

    Attributes:
        file_name: name of the file inside `<data_dir>/<dataset>/`.
        separator: field separator as written in the file.
        n_fields: fields per line; user, item and rating are the first three.
        header: expected header names, or None when the file starts with data.
        integer_items: whether item ids are integers (MovieLens, Last.FM) rather than opaque
            strings (Book-Crossing ISBNs); it decides how they are matched against the item map.
        threshold: ratings at or above it are positives.
        encoding: text encoding of the file.
        quoted: whether fields are wrapped in double quotes.
    """
    file_name: str
    separator: str
    n_fields: int
    header: tuple[str, ...] | None
    integer_items: bool
    threshold: float
    encoding: str = "latin-1"
    quoted: bool = False


RATING_FORMATS = {
    "movie": RatingFormat("ratings.dat", "::", 4, None, integer_items=True, threshold=4.0),
    "book": RatingFormat("BX-Book-Ratings.csv", ";", 3, ("User-ID", "ISBN", "Book-Rating"),
                         integer_items=False, threshold=0.0, quoted=True),
    "music": RatingFormat("user_artists.dat", "\t", 3, ("userID", "artistID", "weight"),
                          integer_items=True, threshold=0.0),
}


@dataclasses.dataclass(frozen=True)
class NameFormat:
    """Layout of a paper dataset's optional file of item names: raw item id, then its name."""
    file_name: str
    separator: str
    header: bool
    encoding: str
    quoted: bool = False


# Files of the datasets' original releases that name the items; none is among the KG files the
# authors published, so they are used when the user has placed them beside the rating file.
ITEM_NAME_FORMATS = {
    "movie": NameFormat("movies.dat", "::", header=False, encoding="latin-1"),
    "book": NameFormat("BX-Books.csv", ";", header=True, encoding="latin-1", quoted=True),
    "music": NameFormat("artists.dat", "\t", header=True, encoding="utf-8"),
}


def read_item_names(dataset: str, path: os.PathLike) -> dict[str, str]:
    """Raw item id (as text) -> name, from the first two fields of each line of `path`.

    Names only label recommendations, so lines that do not parse are skipped rather than
    failing the preparation (Book-Crossing's BX-Books.csv has some).
    """
    layout = ITEM_NAME_FORMATS[dataset]
    text = pathlib.Path(path).read_bytes().decode(layout.encoding, errors="replace")
    separator = layout.separator
    if len(separator) > 1:
        text, separator = text.replace(separator, "\t"), "\t"
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=separator, header=0 if layout.header else None, usecols=[0, 1],
            dtype=str, engine="c", on_bad_lines="skip", keep_default_na=False,
            quoting=csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE,
            escapechar="\\" if layout.quoted else None)
    except (ValueError, pd.errors.ParserError) as error:  # e.g. fewer than two fields
        raise DataError(f"{path}: cannot read item names (id, then name): "
                        f"{str(error).strip()}; remove the file to prepare without names") from None
    ids, names = frame.iloc[:, 0].str.strip(), frame.iloc[:, 1].str.strip()
    # A tab or line break in a name would break the export's TSV asset.
    return dict(zip(ids, names.str.replace(r"\s+", " ", regex=True)))


@dataclasses.dataclass(frozen=True)
class Table:
    """A parsed text file: one row per non-blank data line, columns numbered from 0."""
    path: pathlib.Path
    frame: pd.DataFrame
    header: list[str] | None

    def line_of(self, row: int) -> int:
        """1-based line number in the file of data row `row`."""
        return line_of(self.path, row + (self.header is not None))

    def fail(self, row: int, problem: str) -> DataError:
        """A DataError for data row `row`, quoting the line."""
        line = self.line_of(row)
        return DataError(f"{self.path}, line {line}: {problem}: {_quote_line(self.path, line)}")

    def integers(self, column: int, what: str) -> np.ndarray:
        """Column `column` as int64; the first value that is not an integer raises DataError."""
        values = self.frame[column]
        if pd.api.types.is_integer_dtype(values.dtype):
            return values.to_numpy(np.int64)
        numbers = pd.to_numeric(values, errors="coerce")
        bad = (numbers.isna() | (numbers != np.floor(numbers)) | (numbers.abs() >= 2**62)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise self.fail(row, f"{what} {_plain(values.iloc[row])!r} is not an integer")
        return numbers.to_numpy(np.int64)

    def numbers(self, column: int, what: str) -> np.ndarray:
        """Column `column` as float64; the first value that is not a finite number raises DataError."""
        values = self.frame[column]
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(numbers)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise self.fail(row, f"{what} {_plain(values.iloc[row])!r} is not a number")
        return numbers

    def strings(self, column: int) -> np.ndarray:
        return self.frame[column].to_numpy(dtype=object)

    def ids(self, column: int, what: str) -> np.ndarray:
        """Column `column` as id strings without surrounding spaces (a stray trailing space
        must not make a new entity); an id with whitespace inside raises DataError."""
        values = self.frame[column].str.strip()
        odd = values.str.contains(r"\s", regex=True).to_numpy()
        if odd.any():
            row = int(np.flatnonzero(odd)[0])
            raise self.fail(row, f"{what} {values.iloc[row]!r} has whitespace inside")
        return values.to_numpy(dtype=object)


def read_table(path: os.PathLike, *, separator: str, n_fields: int | None,
               has_header: bool, encoding: str = "utf-8-sig", quoted: bool = False,
               as_strings: bool = False, required: tuple[int, ...] | None = None) -> Table:
    """Parses a separated text file, checking its shape.

    Args:
        path: the file.
        separator: field separator; a multi-character one (MovieLens' '::') is supported.
        n_fields: fields every line must have, or None to take the count from the header.
        has_header: whether the first non-blank line is a header.
        encoding: text encoding; the default also drops a UTF-8 byte order mark.
        quoted: whether fields may be wrapped in double quotes.
        as_strings: keep every field as a string instead of inferring numbers.
        required: columns that must be non-empty on every line (default: all).

    Returns:
        The parsed Table. Blank lines are skipped.

    Raises:
        DataError: missing or empty file, undecodable text, or a line with the wrong number of
            fields or an empty required field.
    """
    path = pathlib.Path(path)
    raw = read_bytes(path)
    # Any encoding: the rating files are latin-1, and a UTF-8 editor may still have added one.
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataError(f"{path}, line {line}: not valid {encoding} text") from None
    sep = separator
    if len(separator) > 1:
        # pandas only has a slow Python parser for multi-character separators.
        text, sep = text.replace(separator, "\t"), "\t"
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, header=0 if has_header else None, engine="c",
            quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE, skip_blank_lines=True,
            keep_default_na=False, na_values=[""], dtype=str if as_strings else None,
            low_memory=False)
    except pd.errors.ParserError as error:
        match = re.search(r"line (\d+), saw (\d+)", str(error))
        if not match:
            raise DataError(f"{path}: cannot parse: {str(error).strip()}") from None
        line, found = int(match[1]), int(match[2])
        expected = n_fields or _count_fields(path, separator, encoding)
        raise DataError(
            f"{path}, line {line}: expected {expected} {_separator_name(separator)}-separated "
            f"fields, found {found}: {_quote_line(path, line)}") from None
    header = [str(name) for name in frame.columns] if has_header else None
    frame.columns = range(frame.shape[1])
    table = Table(path, frame, header)
    if n_fields is not None and frame.shape[1] != n_fields:
        line = line_of(path, 0)
        raise DataError(
            f"{path}, line {line}: expected {n_fields} {_separator_name(separator)}-separated "
            f"fields, found {frame.shape[1]}: {_quote_line(path, line)}")
    if frame.empty:
        raise DataError(f"{path}: file has a header but no data lines")
    columns = list(range(frame.shape[1])) if required is None else list(required)
    missing = frame[columns].isna().to_numpy().any(axis=1)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise table.fail(row, f"expected {frame.shape[1]} {_separator_name(separator)}-separated "
                              f"non-empty fields")
    return table


def read_bytes(path: pathlib.Path, keep: bool = True) -> bytes:
    """The bytes of `path` (none when not `keep`), checking that no line is longer than
    MAX_LINE_BYTES as they are read."""
    chunks = [chunk for chunk in checked_chunks(path) if keep]
    return b"".join(chunks)


def checked_chunks(path: pathlib.Path) -> Iterator[bytes]:
    """The bytes of `path` in chunks of MAX_LINE_BYTES; a longer line raises DataError once
    at most twice that much has been read."""
    if not path.is_file():
        raise DataError(f"{path}: {not_a_file(path)}")
    lines_before, run = 0, 0
    try:
        with open(path, "rb") as file:
            while chunk := file.read(MAX_LINE_BYTES):
                first_end = chunk.find(b"\n")
                run += len(chunk) if first_end < 0 else first_end
                if run > MAX_LINE_BYTES:
                    raise DataError(f"{path}, line {lines_before + 1}: longer than "
                                    f"{MAX_LINE_BYTES:,} bytes without a line end; not a text "
                                    f"table")
                if first_end >= 0:
                    lines_before += chunk.count(b"\n")
                    run = len(chunk) - chunk.rfind(b"\n") - 1
                yield chunk
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None


def not_a_file(path: pathlib.Path) -> str:
    """What is at `path` instead of a readable file, for a message."""
    try:
        path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "is a symbolic link loop, not a file"
        if path.is_symlink():
            return f"is a broken symbolic link to {os.readlink(path)}"
        return "file not found"
    return "is a folder, not a file" if path.is_dir() else "is not a regular file"


def read_ratings(dataset: str, path: os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reads a paper dataset's raw rating file.

    Returns:
        (users, items, ratings): raw user ids (int64), raw item ids (int64, or object strings
        for Book-Crossing) and rating values (float64), one entry per line in file order.
    """
    layout = RATING_FORMATS[dataset]
    table = read_table(path, separator=layout.separator, n_fields=layout.n_fields,
                       has_header=layout.header is not None, encoding=layout.encoding,
                       quoted=layout.quoted, as_strings=not layout.integer_items)
    if layout.header is not None:
        found = [name.strip().lower() for name in table.header]
        if found != [name.lower() for name in layout.header]:
            line = line_of(table.path, 0)
            raise DataError(
                f"{table.path}, line {line}: expected the header "
                f"{layout.separator.join(layout.header)!r}: {_quote_line(table.path, line)}")
    users = table.integers(0, "user id")
    items = table.integers(1, "item id") if layout.integer_items else table.strings(1)
    ratings = table.numbers(2, "rating")
    return users, items, ratings


def read_item_map(path: os.PathLike, integer_items: bool) -> tuple[np.ndarray, np.ndarray]:
    """Reads item_index2entity_id.txt: raw item id, tab, KG entity id.

    Returns:
        (items, entities): raw item ids (int64 or strings) and their entity ids (strings), in
        file order; line i becomes item i.

    Raises:
        DataError: also when an item or an entity is listed twice.
    """
    table = read_table(path, separator="\t", n_fields=2, has_header=False, as_strings=True)
    items = table.integers(0, "item id") if integer_items else table.ids(0, "item id")
    entities = table.ids(1, "entity id")
    for values, what in ((items, "item"), (entities, "entity")):
        repeated = pd.Index(values).duplicated()
        if repeated.any():
            row = int(np.flatnonzero(repeated)[0])
            first = int(np.flatnonzero(values == values[row])[0])
            raise table.fail(row, f"{what} {_plain(values[row])!r} is already listed on line "
                                  f"{table.line_of(first)}")
    return items, entities


def read_kg(path: os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reads kg.txt: head, tab, relation, tab, tail, all kept as id strings."""
    table = read_table(path, separator="\t", n_fields=3, has_header=False, as_strings=True)
    return table.ids(0, "head"), table.ids(1, "relation"), table.ids(2, "tail")


def read_atomic(path: os.PathLike, fields: dict[str, bool]) -> dict[str, np.ndarray]:
    """Reads the wanted columns of a RecBole atomic file, located by header name.

    RecBole headers name each column `field:type` (e.g. `user_id:token`); columns are found by
    the field part, in any order.

    Args:
        path: the .inter, .kg or .link file.
        fields: field name -> whether it is required. Optional fields that are absent are left
            out of the result.

    Returns:
        field name -> column values as strings.
    """
    table = read_table(path, separator="\t", n_fields=None, has_header=True, as_strings=True,
                       required=())
    names = [name.split(":", 1)[0].strip() for name in table.header]
    positions = {}
    for field, is_required in fields.items():
        if field in names:
            positions[field] = names.index(field)
        elif is_required:
            raise DataError(f"{table.path}, line {line_of(table.path, 0)}: no {field!r} column "
                            f"in the header {'  '.join(table.header)!r}")
    missing = table.frame[list(positions.values())].isna().to_numpy().any(axis=1)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise table.fail(row, f"empty or missing {', '.join(positions)} field")
    return {field: table.strings(position) for field, position in positions.items()}


def atomic_numbers(path: os.PathLike, values: np.ndarray, what: str) -> np.ndarray:
    """A RecBole string column as float64; the first non-number raises DataError."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        line = line_of(pathlib.Path(path), row + 1)
        raise DataError(f"{path}, line {line}: {what} {values[row]!r} is not a number")
    return numbers


def _plain(value):
    """A numpy scalar as the Python value, so messages show 10, not np.int64(10)."""
    return value.item() if isinstance(value, np.generic) else value


def _separator_name(separator: str) -> str:
    return _SEPARATOR_NAMES.get(separator, repr(separator))


def line_of(path: pathlib.Path, row: int, blank: bytes | None = b" \r\n") -> int:
    """1-based number of the `row`-th (0-based) non-blank line, counting as pandas does.

    A line of only `blank` bytes is blank (None: of only whitespace, as a whitespace-separated
    reader skips). The one line counter of every error message on the data's files, whose
    shape is `<file>, line <n>: <problem>`."""
    number, seen = 0, -1
    with open(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            if line.strip(blank):
                seen += 1
                if seen == row:
                    return number
    return number


def _quote_line(path: pathlib.Path, line: int) -> str:
    """The text of line `line`, shortened for an error message."""
    with open(path, "rb") as file:
        for number, text in enumerate(file, start=1):
            if number == line:
                shown = text.rstrip(b"\r\n").decode("latin-1")
                return repr(shown if len(shown) <= 80 else shown[:77] + "...")
    return "''"


def _count_fields(path: pathlib.Path, separator: str, encoding: str) -> int:
    """Fields on the first non-blank line, the count pandas expects on every other line."""
    with open(path, encoding=encoding, errors="replace") as file:
        for line in file:
            if line.strip(" \r\n"):
                return len(line.rstrip("\r\n").split(separator))
    return 0
