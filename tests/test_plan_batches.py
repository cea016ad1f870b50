"""Pass two plans a batch at once (``plan_rows``): exactly what ``plan_row`` says of each
row, whatever the row, the ledger's facts, the repeated ids and the options."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from importer.outcomes import LedgerFact, Status
from importer.plan.planner import DuplicateInfo, plan_row, plan_rows
from importer.rows.validate import MappedRow, RowError
from importer.settings import PlanOptions

IDS = st.sampled_from([None, "", "crm:1", "crm:2", "crm:3"])
PAYLOADS = st.sampled_from([None, {"title": "a"}, {"title": "b", "start_at": "2024-01-01"}])
ERRORS = st.lists(
    st.sampled_from(["required", "row_shape", "encoding", "date_time"]).map(
        lambda rule: RowError("m.csv", 2, "title", rule, f"broke {rule}")
    ),
    max_size=2,
).map(tuple)


@st.composite
def mapped_rows(draw: st.DrawFn, number: int) -> MappedRow:
    return MappedRow(
        "m.csv",
        number,
        {"id": str(number)},
        draw(IDS),
        draw(PAYLOADS),
        draw(ERRORS),
        draw(st.sampled_from([None, (), ("c1",), ("c1", "c2")])),
        draw(st.sampled_from([None, "no media URL"])),
        draw(st.sampled_from([None, "1"])),
    )


@st.composite
def batches(
    draw: st.DrawFn,
) -> tuple[list[MappedRow], dict[str, LedgerFact], dict[str, DuplicateInfo], PlanOptions]:
    count = draw(st.integers(0, 6))
    rows = [draw(mapped_rows(number)) for number in range(2, 2 + count)]
    hashes = [r.payload_hash for r in rows] + [None, "other"]
    facts = draw(
        st.dictionaries(
            st.sampled_from(["crm:1", "crm:2", "crm:3"]),
            st.builds(
                LedgerFact,
                status=st.sampled_from(list(Status)),
                payload_hash=st.sampled_from(hashes),
                transient=st.booleans(),
                field_hashes=st.sampled_from([{}, {"title": "0123456789abcdef"}]),
                contacts_hash=st.sampled_from([None, "x"]),
                engagement_id=st.sampled_from([None, "eng-1"]),
            ),
        )
    )
    duplicates = draw(
        st.dictionaries(
            st.sampled_from(["crm:1", "crm:2", "crm:3"]),
            st.builds(
                DuplicateInfo,
                first_row=st.integers(2, 8),
                conflicting=st.booleans(),
                rows=st.just((2, 3)),
                more=st.integers(0, 2),
                lookalike=st.sampled_from(["", "one id under NFKC"]),
            ),
        )
    )
    options = PlanOptions(include_permanent=draw(st.booleans()), only_failed=draw(st.booleans()))
    return rows, facts, duplicates, options


@settings(max_examples=200, deadline=None)
@given(batches())
def test_a_batch_is_planned_as_each_of_its_rows_is(
    batch: tuple[list[MappedRow], dict[str, LedgerFact], dict[str, DuplicateInfo], PlanOptions],
) -> None:
    rows, facts, duplicates, options = batch
    one_by_one = [
        plan_row(
            row,
            facts.get(row.external_id) if row.external_id else None,
            duplicates.get(row.external_id) if row.external_id else None,
            options,
        )
        for row in rows
    ]
    at_once = plan_rows(rows, facts, duplicates, options)
    assert at_once == one_by_one
    assert [vars(p) for p in at_once] == [vars(p) for p in one_by_one]
    assert [p.sends for p in at_once] == [p.sends for p in one_by_one]
