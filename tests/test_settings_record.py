"""ImportSettings owns its stored form: retry reads rows as the last run did, whatever the
CLI's option names, and ledgers written before the stored form still read back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from importer.errors import ChoiceError
from importer.ledger import Ledger
from importer.settings import ReadingChoices
from importer.targets.registry import import_settings, recorded_import_settings

CHOICES = ReadingChoices(
    source_system="crm",
    prefix="x:",
    timezone="Europe/Paris",
    run_workflows=True,
    batch_size=50,
    skip_without_media=True,
    date_format="%d/%m/%Y %H:%M",
    delimiter=";",
    encoding="cp1252",
)


def test_the_stored_form_rebuilds_the_same_reading(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[columns]\ntitle = "Subject"\n', encoding="utf-8")
    choices = ReadingChoices(**{**CHOICES.__dict__, "mapping": mapping})
    settings = import_settings(tmp_path / "m.csv", choices)

    again = recorded_import_settings(tmp_path / "m.csv", settings.to_record())

    assert again.reading == ReadingChoices(**{**choices.__dict__, "mapping": mapping.resolve()})
    assert again.mapping.columns.column_of("title") == "Subject"
    assert again.mapping.timezone == "Europe/Paris" and again.batch_size == 50
    assert again.source.delimiter == ";" and again.source.encoding == "cp1252"


def test_retry_reads_the_stored_settings_not_the_options(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        settings = import_settings(tmp_path / "m.csv", CHOICES)
        # Options as a later CLI might spell them: nothing reads them back.
        ledger.start_run("run", "m", {"tz": "UTC"}, settings.to_record())

    with Ledger(tmp_path / "l.db", readonly=True) as ledger:
        record = ledger.last_settings("m")

    assert ReadingChoices.from_record(record) == CHOICES


def test_a_ledger_from_before_stored_settings_reads_its_options(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with Ledger(path) as ledger:
        ledger.start_run("run", "m", {"timezone": "Asia/Tokyo", "batch_size": 10, "dayfirst": 1})
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE runs DROP COLUMN settings")  # as older ledgers were

    with Ledger(path, readonly=True) as ledger:
        record = ledger.last_settings("m")

    assert ReadingChoices.from_record(record) == ReadingChoices(
        timezone="Asia/Tokyo", batch_size=10, dayfirst=True
    )


@pytest.mark.parametrize(
    ("choices", "option"),
    [
        (ReadingChoices(timezone="Mars/Olympus"), "--timezone"),
        (ReadingChoices(date_format="dd/mm/yyyy"), "--date-format"),
        (ReadingChoices(dayfirst=True, monthfirst=True), None),
    ],
)
def test_choices_that_cannot_work_name_their_option(
    choices: ReadingChoices, option: str | None
) -> None:
    with pytest.raises(ChoiceError) as raised:
        choices.check()
    assert raised.value.option == option
