"""Writes the sample manifests in manifests/ (deterministic: same files every time)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from importer.rows.mapping import FIELDS

HERE = Path(__file__).resolve().parent.parent / "manifests"
COLUMNS = [name for name in FIELDS if name != "contact_ids"]
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo"]
LAST = ["Ng", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tan", "Ueda", "Vega", "Wu"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka"]
TOPICS = ["Discovery call", "Demo", "Pricing review", "Renewal", "QBR", "Onboarding"]


def valid_rows(rng: random.Random, count: int) -> list[dict[str, str]]:
    rows = []
    for n in range(count):
        company = rng.choice(COMPANIES)
        people = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(rng.randint(1, 3))]
        participants = "; ".join(
            f"{p} <{p.split()[0].lower()}.{p.split()[1].lower()}@{company.lower()}.com>"
            for p in people
        )
        if n % 7 == 0:  # some exports carry JSON participants
            participants = json.dumps([{"name": p} for p in people])
        day = 1 + n % 28
        start = [
            f"2023-{1 + n % 12:02d}-{day:02d}T{9 + n % 8:02d}:30:00Z",
            f"2024-{1 + n % 12:02d}-{day:02d} {9 + n % 8:02d}:15",
            str(1_700_000_000 + n * 86_400),
        ][n % 3]
        rows.append(
            {
                "id": f"00T{5000 + n:07d}",
                "type": "CALL" if n % 3 else "meeting",
                "title": f"{rng.choice(TOPICS)} with {company}",
                "media_url": f"https://recordings.example.com/{company.lower()}/{5000 + n}."
                + rng.choice(["mp3", "m4a", "mp4", "wav"]),
                "start_at": start,
                "is_private": rng.choice(["", "false", "true"]),
                "participants": participants,
                "transcript_text": f"{people[0]}: Thanks for joining, let's talk about {company}."
                if n % 4 == 0
                else "",
                "transcript_path": "transcripts/call-5001.txt" if n == 1 else "",
                "source_system": "salesforce",
            }
        )
    return rows


def invalid_rows() -> list[dict[str, str]]:
    base = {
        "type": "CALL",
        "title": "Follow-up",
        "media_url": "https://recordings.example.com/bad/1.mp3",
        "start_at": "2024-02-01T10:00:00Z",
        "is_private": "",
        "participants": "",
        "transcript_text": "",
        "transcript_path": "",
        "source_system": "salesforce",
    }
    cases = [
        {"id": "00T9000001", "media_url": "http://recordings.example.com/plain-http.mp3"},
        {"id": "00T9000002", "media_url": "https://10.1.2.3/internal.mp3"},
        {"id": "00T9000003", "type": "VIDEO"},
        {"id": "00T9000004", "title": ""},
        {"id": "00T9000005", "start_at": "next Tuesday"},
        {"id": "00T9000006", "participants": "Sam <not-an-email>"},
        {"id": "", "title": "Row without an id"},
        {"id": "00T9000008", "start_at": "2024-02-30 10:00"},
    ]
    return [{**base, **case} for case in cases]


def main() -> None:
    rng = random.Random(20241123)
    rows = valid_rows(rng, 52)
    bad = invalid_rows()
    # Spread the bad rows through the file, as a real export would have them.
    for index, row in enumerate(bad):
        rows.insert(5 + index * 6, row)
    # One id exported twice with identical values: sent once.
    rows.append(dict(rows[10]))
    (HERE / "transcripts").mkdir(parents=True, exist_ok=True)
    (HERE / "transcripts" / "call-5001.txt").write_text(
        "Ana Ng: Hello!\nBen Okafor: Hi Ana, thanks for the time today.\n", encoding="utf-8"
    )
    with (HERE / "sample.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    table = pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in COLUMNS]))
    pq.write_table(table, HERE / "sample.parquet")
    # A CRM-shaped export, read through mapping.example.toml.
    crm = [
        {
            "Activity ID": row["id"],
            "Subject": row["title"],
            "Recording URL": row["media_url"],
            "Call Date": row["start_at"],
            "Attendees": row["participants"],
        }
        for row in rows[:12]
    ]
    with (HERE / "crm_export.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(crm[0]))
        writer.writeheader()
        writer.writerows(crm)


if __name__ == "__main__":
    main()
