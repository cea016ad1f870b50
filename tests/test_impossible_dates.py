"""A date cell that is no date at all is not told to "add the time".

Found reviewing issue 10 ("the wording is true"): ``32/13/2023`` was refused with "has a
date but no time of day; add the time", which sends a user adding a time to a cell whose
day and month cannot exist.
"""

from __future__ import annotations

import pytest

from importer.errors import InvalidCell
from importer.rows.dates import parse_start_at


@pytest.mark.parametrize("cell", ["32/13/2023", "13/13/2024", "00/05/2024", "31.02.2024"])
def test_a_day_and_month_that_cannot_exist_is_said_to_be_no_date(cell: str) -> None:
    with pytest.raises(InvalidCell) as refused:
        parse_start_at(cell, "UTC")

    assert "is not a date" in str(refused.value)
    assert "add the time" not in str(refused.value)


@pytest.mark.parametrize("cell", ["3/5/2024", "25/12/2024", "12/25/2024"])
def test_a_real_date_without_a_time_still_asks_for_the_time(cell: str) -> None:
    with pytest.raises(InvalidCell) as refused:
        parse_start_at(cell, "UTC")

    assert "has a date but no time of day" in str(refused.value)
