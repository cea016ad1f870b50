"""A batch of rows mapped column by column: ``map_row``'s result for every row, faster.

Most rows of an export are plain: every field holds an ordinary value that passes. So each
field's rules run down its column at once: a value repeated in the column (a type, a
source system, a start time, ``is_private``, a contact list) is judged once per batch; the
others go through the field's own reader (``parse_participants``, ``check_media_url``,
whose common forms are themselves fast), and what is nearly never in a batch (a hidden
character in an id or URL) is looked for in the column joined. A row with anything else in
it (a problem in any field, an undecodable byte, a shape problem, a blank media URL, a
transcript file) is mapped by ``map_row`` itself, so every error and message is exactly
the row-by-row one. ``tests/test_columnar.py`` holds the two equal, row for row, on the
suite's manifests and on generated rows.

    >>> from importer.read.manifest import ManifestRow
    >>> cells = {"id": "7", "type": "call", "title": "Intro", "source_system": "hubspot",
    ...          "media_url": "https://media.example.com/7.mp3", "start_at": "2024-05-01 14:30"}
    >>> rows = [ManifestRow(2, cells), ManifestRow(3, {**cells, "type": "memo"})]
    >>> plain, odd = map_batch(rows, MappingOptions(timezone="Europe/Paris"))
    >>> plain.payload["external_id"], plain.payload["start_at"]
    ('hubspot:7', '2024-05-01T12:30:00+00:00')
    >>> print(odd.errors[0])
    manifest, row 3, column 'type': must be CALL or MEETING, not 'memo'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any, TypeVar

from importer.errors import InvalidCell
from importer.read.manifest import ManifestRow, PlainColumns
from importer.rows import contract
from importer.rows.cells import EXCEL_ROUNDED, has_lone_surrogate, hidden_character
from importer.rows.dates import parse_start_at
from importer.rows.participants import parse_participants
from importer.rows.validate import (
    NOT_A_BOOLEAN,
    MappedRow,
    MappingOptions,
    TranscriptReader,
    map_row,
    parse_boolean,
    parse_contact_ids,
    participants_of,
    request_payload,
)

NOT_PLAIN: Any = object()
"""A field value only ``map_row`` may judge."""
Value = TypeVar("Value")


IndexEntry = tuple[str, int, None, str, str]
"""(external_id, row, no payload hash, source id, media URL): what a plan's index keeps of a
plain row."""
PlainRow = TypeVar("PlainRow")
PlainMaker = Callable[[int, int, dict[str, Any], Any, str], PlainRow]
"""Makes a plain row's result from its place in the batch, its row number, its payload,
contact ids and source id."""


def map_batch(
    batch: Sequence[ManifestRow],
    options: MappingOptions,
    *,
    file: str = "manifest",
    read_transcript: TranscriptReader | None = None,
) -> list[MappedRow]:
    """``[map_row(row) for row in batch]``, the same rows, each field decided per column."""

    def plain(index: int, number: int, payload: dict[str, Any], ids: Any, source: str) -> MappedRow:
        return MappedRow.plain(file, number, batch[index].cells, payload, ids, source)

    return _mapped(batch, options, file, read_transcript, plain)


def index_entries(
    batch: Sequence[ManifestRow] | PlainColumns,
    options: MappingOptions,
    *,
    file: str = "manifest",
    read_transcript: TranscriptReader | None = None,
) -> list[IndexEntry] | list[MappedRow]:
    """The batch's index entries when every row is plain: all a plan keeps of a batch whose
    records it spools (no ``MappedRow`` made, a sixth of mapping one); else ``map_batch``'s
    rows, each mapped once. A batch of ``PlainColumns`` is read column by column: a row's
    dict is made only if the row is not plain.

    An entry holds no payload hash (a seventh of mapping a row): a plan spools records only
    while the ledger holds no engagement, so its index meets no hash of the ledger's; it
    compares the hashes of rows sharing an external_id, taken then (``passes``'
    ``_hashes_of_repeated``)."""

    def entry(index: int, number: int, payload: dict[str, Any], ids: Any, source: str) -> Any:
        found = (payload["external_id"], number, None, source, payload["media_url"])
        return (*found, index, payload, ids)

    made: list[Any] = _mapped(batch, options, file, read_transcript, entry)
    if all(type(item) is tuple for item in made):
        return [item[:5] for item in made]
    row = batch.row if isinstance(batch, PlainColumns) else batch.__getitem__
    return [
        item
        if type(item) is not tuple
        else MappedRow.plain(file, item[1], row(item[5]).cells, item[6], item[7], item[3])
        for item in made
    ]


def _mapped(
    batch: Sequence[ManifestRow] | PlainColumns,
    options: MappingOptions,
    file: str,
    read_transcript: TranscriptReader | None,
    plain: PlainMaker[PlainRow],
) -> list[MappedRow | PlainRow]:
    """Each row: ``plain``'s result from its fields decided per column, or ``map_row``'s."""
    joined_people = "participants" in options.columns.joined
    if isinstance(batch, PlainColumns) and joined_people:
        batch = batch.rows()  # joined people are read from each row's own cells
    if isinstance(batch, PlainColumns):
        values = options.columns.field_columns_of(batch.header, batch.columns)
        every_cell = chain.from_iterable(batch.columns)
        numbers = batch.numbers
        row_at: Callable[[int], ManifestRow] = batch.row
        problems: Iterable[str | None] = [None] * len(numbers)
        cells = None
    else:
        cells = [row.cells for row in batch]
        values = options.columns.field_columns(cells)
        every_cell = chain.from_iterable(map(dict.values, cells))
        numbers = [row.row_number for row in batch]
        problems = (row.problem for row in batch)
        row_at = batch.__getitem__
    columns = _Columns(values, options)
    external_ids, source_ids = columns.external_ids()
    fields = zip(
        external_ids,
        source_ids,
        columns.source_systems,
        columns.decided("type", _engagement_type),
        columns.titles(),
        columns.media_urls(),
        columns.decided("start_at", _start_at(options)),
        columns.decided("is_private", _is_private),
        columns.participants(cells if joined_people else None),
        columns.transcripts(),
        columns.decided("contact_ids", _contact_ids),
        strict=True,
    )
    undecodable = has_lone_surrogate("".join(every_cell))
    mapped: list[MappedRow | PlainRow] = []
    for index, (number, problem, field_values) in enumerate(
        zip(numbers, problems, fields, strict=True)
    ):
        if problem or NOT_PLAIN in field_values or (undecodable and _undecodable(row_at(index))):
            row = row_at(index)
            mapped.append(
                map_row(
                    row.cells,
                    row.row_number,
                    options,
                    file=file,
                    read_transcript=read_transcript,
                    structural_problem=row.problem,
                )
            )
            continue
        (eid, source_id, system, kind, title, url, start, private, who, text, ids) = field_values
        payload = request_payload(
            system, eid, kind, title, url, options.run_workflows, start, private, who, text
        )
        mapped.append(plain(index, number, payload, ids, source_id))
    return mapped


def _undecodable(row: ManifestRow) -> bool:
    return any(has_lone_surrogate(value) for value in row.cells.values())


class _Columns:
    """One batch's field values, column by column: each a list of values or ``NOT_PLAIN``."""

    def __init__(self, values: dict[str, list[str]], options: MappingOptions) -> None:
        self.values, self.options = values, options
        self.source_systems = self.decided("source_system", self._source_system)

    def decided(self, field_name: str, decide: Callable[[str], Value]) -> list[Value]:
        """The column, each distinct value decided once (by ``decide``, which returns
        ``NOT_PLAIN`` for a value ``map_row`` must judge)."""
        column = self.values[field_name]
        known = {value: decide(value) for value in set(column)}
        return list(map(known.__getitem__, column))

    def _source_system(self, value: str) -> Any:
        system = value.strip() or (self.options.source_system or "")
        if not system or len(system) > contract.SOURCE_SYSTEM_MAX_CHARS:
            return NOT_PLAIN
        return system

    def external_ids(self) -> tuple[list[Any], list[Any]]:
        """The prefixed ids, and the ids as the CRM wrote them."""
        prefixes = {system: self._prefix(system) for system in set(self.source_systems)}
        source_ids = [value.strip() for value in self.values["id"]]
        joined = " ".join(source_ids)
        # One scan of the batch's ids clears them all of hidden characters and Excel's
        # rounded numbers (1.23E+15), as nearly always; otherwise each id is looked at.
        clear = hidden_character(joined) is None and "E+" not in joined
        external_ids = []
        for row_id, system in zip(source_ids, self.source_systems, strict=True):
            prefix = prefixes[system]
            plain = (
                row_id
                and prefix is not NOT_PLAIN
                and len(prefix) + len(row_id) <= contract.EXTERNAL_ID_MAX_CHARS
                and (
                    clear
                    or (
                        hidden_character(row_id) is None and EXCEL_ROUNDED.fullmatch(row_id) is None
                    )
                )
            )
            external_ids.append(prefix + row_id if plain else NOT_PLAIN)
        return external_ids, source_ids

    def _prefix(self, system: Any) -> Any:
        if self.options.prefix is not None:
            prefix = self.options.prefix
        elif system is NOT_PLAIN:
            return NOT_PLAIN
        else:
            prefix = f"{system}:"
        return prefix if hidden_character(prefix) is None else NOT_PLAIN

    def titles(self) -> list[Any]:
        result = []
        for value in self.values["title"]:
            title = value.strip()
            plain = title and len(title) <= contract.TITLE_MAX_CHARS
            result.append(title if plain else NOT_PLAIN)
        return result

    def media_urls(self) -> list[Any]:
        urls = [value.strip() for value in self.values["media_url"]]
        printable = "".join(urls).isprintable()  # one scan, nearly always true
        result = []
        for url in urls:
            # A blank URL is skipped or invalid, and one with "@" may carry a password:
            # map_row says which.
            plain = url and "@" not in url and contract.check_media_url(url) is None
            result.append(url if plain and (printable or url.isprintable()) else NOT_PLAIN)
        return result

    def participants(self, cells: list[dict[str, str]] | None) -> list[Any]:
        """The people of each row; ``cells``: the rows', when the mapping joins columns."""
        result: list[Any] = []
        values = self.values["participants"]
        if cells is None:  # each cell read by itself
            for value in values:
                try:
                    result.append(parse_participants(value))
                except InvalidCell:
                    result.append(NOT_PLAIN)
            return result
        for row, value in zip(cells, values, strict=True):
            try:
                result.append(participants_of(row, value, self.options))
            except InvalidCell:
                result.append(NOT_PLAIN)
        return result

    def transcripts(self) -> list[Any]:
        result = []
        for text, path in zip(
            self.values["transcript_text"], self.values["transcript_path"], strict=True
        ):
            if path.strip():
                result.append(NOT_PLAIN)  # a file to read: map_row reads it
            elif not text.strip():
                result.append("")
            else:
                result.append(text if contract.check_transcript(text) is None else NOT_PLAIN)
        return result


def _start_at(options: MappingOptions) -> Callable[[str], Any]:
    """The start_at cell read with the options' zone and date style; ``NOT_PLAIN`` for one
    ``map_row`` must judge."""

    def decide(value: str) -> Any:
        try:
            return parse_start_at(value, options.timezone, options.dates)
        except InvalidCell:
            return NOT_PLAIN

    return decide


def _engagement_type(value: str) -> Any:
    kind = value.strip().upper()
    return kind if kind in contract.ENGAGEMENT_TYPES else NOT_PLAIN


def _is_private(value: str) -> Any:
    private = parse_boolean(value)
    return NOT_PLAIN if private is NOT_A_BOOLEAN else private


def _contact_ids(value: str) -> Any:
    try:
        return parse_contact_ids(value)
    except InvalidCell:
        return NOT_PLAIN
