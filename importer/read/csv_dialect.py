"""How a CSV export is written: its text encoding and its delimiter.

Exports come as UTF-8 (with or without a BOM), as Excel's "Unicode Text" (UTF-16 with a
BOM, tab-separated), or in a Windows code page (cp1252, latin-1) with ``;`` between cells
where the decimal separator is a comma. The BOM or ``--encoding`` decides the encoding;
the header line decides the delimiter unless ``--delimiter`` does.

    >>> sniff_delimiter("Id;Subject;Call Date")
    ';'
"""

from __future__ import annotations

import codecs
import functools
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importer.errors import ManifestError, UsageError

ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1")
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
SAMPLE_BYTES = 64 * 1024
UTF16_SNIFF_BYTES = 512
# Undecodable lines in the sample from which the file, not a row, is the problem.
FILE_LEVEL_UNDECODABLE = 3


def delimiter_option(value: str | None) -> str | None:
    """``--delimiter``: one of ``, ; | tab`` (names allowed), or None to sniff."""
    if value is None:
        return None
    delimiter = DELIMITER_NAMES.get(value.lower(), value)
    if delimiter not in DELIMITERS:
        raise UsageError(f"--delimiter must be one of , ; | tab, not {value!r}")
    return delimiter


def encoding_option(value: str | None) -> str | None:
    """``--encoding``: one of ENCODINGS (any case, ``latin1``/``windows-1252`` spellings)."""
    if value is None:
        return None
    spelled = value.lower().replace("_", "-")
    spelled = {"utf8": "utf-8", "latin1": "latin-1", "windows-1252": "cp1252"}.get(spelled, spelled)
    if spelled not in ENCODINGS:
        raise UsageError(f"--encoding must be one of {', '.join(ENCODINGS)}, not {value!r}")
    return spelled


UNDECODABLE = "importer-undecodable"
"""The error handler CSV files are read with: each byte that is not text in the file's
encoding becomes the lone surrogate U+DC00 + byte, so its row, not the file, is reported.
Unlike ``surrogateescape`` it also takes bytes below 0x80 (a damaged UTF-16 file's)."""


def _escape_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), error.end


codecs.register_error(UNDECODABLE, _escape_undecodable)


def _utf16_without_bom(sample: bytes) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` for UTF-16 text without a BOM, else None.

    A CSV header is mostly ASCII: in UTF-16 most of its odd bytes (little-endian) or even
    bytes (big-endian) are NUL, and almost none of the others. UTF-8 text has no NULs.
    """
    head = sample[:UTF16_SNIFF_BYTES]
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even, odd = head[0 : pairs * 2 : 2].count(0), head[1 : pairs * 2 : 2].count(0)
    if odd >= pairs * 0.6 and even <= pairs * 0.05:
        return "utf-16-le"
    if even >= pairs * 0.6 and odd <= pairs * 0.05:
        return "utf-16-be"
    return None


def detect_encoding(path: Path, given: str | None) -> str:
    """The codec to open the file with: ``given``, else from the BOM, else UTF-8.

    A file without a BOM whose first 64 KiB fail UTF-8 on several lines is not UTF-8: that
    is one ``ManifestError`` for the file, showing a line as Windows-1252 would read it,
    instead of the same error on every row. UTF-16 without a BOM is recognised by the NUL
    bytes of its header line.
    """
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if given in (None, "utf-16") and sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    utf16 = _utf16_without_bom(sample)
    if given == "utf-16":
        if utf16 is None:
            raise ManifestError(
                str(path),
                "is not UTF-16 (no byte-order mark, and its first line is not UTF-16 text): "
                "try without --encoding",
            )
        return utf16
    if given is None and utf16 is not None:
        return utf16
    if given == "utf-8":
        return "utf-8-sig"  # a BOM is never part of the first column's name
    if given is not None:
        return given
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    bad_lines = _undecodable_lines(sample)
    if len(bad_lines) >= FILE_LEVEL_UNDECODABLE:
        number, line = bad_lines[0]
        if any(byte < 0x20 and byte not in b"\t\r" for byte in line):
            raise ManifestError(
                str(path), f"is not a UTF-8 CSV file (binary data on line {number})"
            )
        shown = line.decode("cp1252", "replace").strip()
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ManifestError(
            str(path),
            f"is not UTF-8 ({len(bad_lines)} of the first lines are not, e.g. line {number}); "
            f"read as Windows-1252, line {number} says {shown!r}. If that reads right, pass "
            "--encoding cp1252 (or latin-1); else save the file as UTF-8",
        )
    return "utf-8-sig"


def _undecodable_lines(sample: bytes) -> list[tuple[int, bytes]]:
    lines = sample.split(b"\n")
    if len(sample) == SAMPLE_BYTES:
        lines = lines[:-1]  # the last line may be cut in the middle of a character
    bad = []
    for number, line in enumerate(lines, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append((number, line))
    return bad


def sniff_delimiter(header: str) -> str:
    """The candidate that splits the header line into the most cells (outside quotes)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


MAX_LINE_CHARS = 20 * 1024 * 1024
"""The longest physical line read into memory; a longer one is skipped (its row refused)."""
LINE_TOO_LONG = "\x00line too long\x00"


class BoundedLines:
    """A CSV file's physical lines, none longer than ``MAX_LINE_CHARS``.

    A longer line is read past in bounded chunks and replaced by ``LINE_TOO_LONG``, so a
    2 GB line (a sparse file, a runaway export) costs at most one chunk of memory, and only
    the row it belongs to is refused (the record holding the marker).
    """

    def __init__(self, handle: io.TextIOWrapper, limit: int = MAX_LINE_CHARS) -> None:
        self.handle, self.limit = handle, limit

    def __iter__(self) -> BoundedLines:
        return self

    def __next__(self) -> str:
        line = self.handle.readline(self.limit)
        if not line:
            raise StopIteration
        if len(line) < self.limit or line.endswith(("\n", "\r")):
            return line
        while True:  # skip the rest of this line, a chunk at a time
            rest = self.handle.readline(self.limit)
            if not rest or rest.endswith(("\n", "\r")):
                break
        return LINE_TOO_LONG + "\n"


NEWLINE_IS_ITS_OWN_BYTE = ("utf-8", "ascii", "iso8859", "cp125", "latin")
"""Codecs in which a line-feed byte is always a line feed and a character is at least a
byte: a line of bytes bounds the text lines in it (not so in UTF-16)."""


def lines_are_short(path: Path, encoding: str, limit: int = MAX_LINE_CHARS) -> bool:
    """Whether no line of the file can reach ``limit`` characters, so that the file object
    itself (in C) can hand the reader its lines instead of ``BoundedLines``: a file smaller
    than that, or one whose every line is shorter (one scan of its bytes, a tenth of a
    second for 170 MB)."""
    if not path.is_file() or not codecs.lookup(encoding).name.startswith(NEWLINE_IS_ITS_OWN_BYTE):
        return False
    state = path.stat()
    if state.st_size < limit:
        return True
    return _lines_under(str(path), state.st_size, state.st_mtime_ns, limit)


@functools.lru_cache(maxsize=16)
def _lines_under(path: str, size: int, modified_ns: int, limit: int) -> bool:
    """Whether every line of the file is shorter than ``limit`` bytes; kept per state of
    the file (a command opens its manifest up to four times: header, dates, each pass)."""
    with open(path, "rb") as handle:
        lines = iter(functools.partial(handle.readline, limit), b"")
        return max(map(len, lines), default=0) < limit


FOOTER_START = re.compile(
    r"\s*(grand totals?\b|totals?\b|sub-?totals?\b|confidential\b|copyright\b|\(c\)|©|"
    r"generated\b|report generated\b|exported (on|by|at)\b|filtered by\b|powered by\b|"
    r"count\b|record count\b|\d[\d,]* records?\b)",
    re.IGNORECASE,
)
FOOTER_IN_FIRST_CELLS = re.compile(r"(?:^|\x00)" + FOOTER_START.pattern, re.IGNORECASE)
"""``FOOTER_START`` at the start of any of a batch's first cells joined with NUL: one search
where a match of each cell finds a footer (a NUL inside a cell may find one that is not)."""
# A trailing block longer than this is data, not a footer: memory stays bounded.
MAX_FOOTER_ROWS = 20


def is_footer_row(cells: list[str]) -> bool:
    """First cell starts like a footer, and most cells are blank (a record fills them)."""
    if not cells or not FOOTER_START.match(cells[0] or ""):
        return False
    filled = sum(1 for cell in cells if cell and cell.strip())
    return filled <= max(2, len(cells) // 3)


@dataclass
class FooterStats:
    """Rows dropped as a report footer, for one notice."""

    rows: list[int] = field(default_factory=list)
    first_cell: str = ""


class TrailingFooter:
    """Holds back footer-like records until a record that is not one (or the end) says
    whether they were a report's trailing footer: ``drop_trailing_footer`` in steps."""

    def __init__(self, stats: FooterStats | None = None) -> None:
        self.stats = stats
        self.held: list[tuple[int, list[str], Any]] = []

    def feed(
        self, records: Iterable[tuple[int, list[str], Any]]
    ) -> list[tuple[int, list[str], Any]]:
        """The records known not to be the footer, in order."""
        records = list(records)
        held = self.held
        first_cells = "\x00".join([r[1][0] for r in records if r[1]])
        if not held and not FOOTER_IN_FIRST_CELLS.search(first_cells):
            return records  # nearly every batch: no record starts like a footer
        passed: list[tuple[int, list[str], Any]] = []
        for record in records:
            footer = is_footer_row(record[1])
            if footer and len(held) < MAX_FOOTER_ROWS:
                held.append(record)
                continue
            if held:
                passed.extend(held)
                held.clear()
            if footer:
                held.append(record)  # the block was too long to be a footer; start again
            else:
                passed.append(record)
        return passed

    def end(self) -> None:
        """The file ended: what is held was its footer."""
        if self.held and self.stats is not None:
            self.stats.rows = [record[0] for record in self.held]
            self.stats.first_cell = self.held[0][1][0].strip()


def drop_trailing_footer(
    records: Iterator[tuple[int, list[str], Any]], stats: FooterStats | None = None
) -> Iterator[tuple[int, list[str], Any]]:
    """``(row, cells, extra)`` records less a trailing block of footer rows."""
    footer = TrailingFooter(stats)
    for record in records:
        yield from footer.feed((record,))
    footer.end()


# A record fills its id and a few more cells; a report's group heading or subtotal row
# (Salesforce "Formatted Report") fills one or two, and never the id.
MAX_REPORT_ROW_CELLS = 2
REPORT_ROWS_KEPT = 20


@dataclass
class ReportRowStats:
    """Group headings and subtotals dropped from between records, for one notice."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    """The first ``REPORT_ROWS_KEPT`` row numbers: memory stays bounded."""

    def add(self, row: int) -> None:
        self.count += 1
        if len(self.rows) < REPORT_ROWS_KEPT:
            self.rows.append(row)


def is_report_row(cells: list[str], id_index: int | None) -> bool:
    """A row with no id and at most two cells filled: a heading, subtotal or blank group.

    Such a row can never be a valid record (it needs an id, a start and a media URL), so
    dropping it never costs one. ``id_index`` None (the id column unknown) decides nothing.
    """
    if id_index is None or (id_index < len(cells) and cells[id_index].strip()):
        return False
    return few_cells_filled(cells)


def few_cells_filled(cells: list[str]) -> bool:
    """At most ``MAX_REPORT_ROW_CELLS`` cells hold something."""
    return sum(1 for cell in cells if cell and cell.strip()) <= MAX_REPORT_ROW_CELLS


def without_report_rows(
    records: list[tuple[int, list[str], Any]],
    id_index: int | None,
    stats: ReportRowStats | None = None,
) -> list[tuple[int, list[str], Any]]:
    """``drop_report_rows`` of a batch: the batch itself when every record has its id."""
    if id_index is None:
        return records
    try:
        if all(map(str.strip, [record[1][id_index] for record in records])):
            return records
    except IndexError:  # a record without an id cell: each is looked at
        pass
    return list(drop_report_rows(records, id_index, stats))


def drop_report_rows(
    records: Iterable[tuple[int, list[str], Any]],
    id_index: int | None,
    stats: ReportRowStats | None = None,
) -> Iterator[tuple[int, list[str], Any]]:
    """``(row, cells, extra)`` records less a grouped report's headings and subtotals."""
    for record in records:
        if is_report_row(record[1], id_index):
            if stats is not None:
                stats.add(record[0])
            continue
        yield record
