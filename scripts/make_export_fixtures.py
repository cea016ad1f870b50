"""Write tests/exports/: small exports shaped like the ones CRMs and recorders really produce.

Each has its system's header set and value shapes (dates, ids, participants, footers,
encodings). Run it again after changing it: ``python scripts/make_export_fixtures.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq

OUT = Path(__file__).resolve().parent.parent / "tests" / "exports"
MEDIA = "https://recordings.example.com"

SALESFORCE_HEADER = [
    "Activity ID",
    "Subject",
    "Call Type",
    "Call Duration (seconds)",
    "Created Date",
    "Assigned",
    "Related To",
    "Call Recording URL",
    "Comments",
]
# (id, subject, direction, seconds, created, owner, account, has recording)
SALESFORCE_ROWS = [
    (
        "00T5e00000AbCdE",
        "Discovery - Acme",
        "Outbound",
        1834,
        (3, 5, 14, 30),
        "Dana Park",
        "Acme Corp",
        True,
    ),
    (
        "00T5e00000AbCdF",
        "Pricing follow-up",
        "Inbound",
        942,
        (3, 7, 9, 5),
        "Dana Park",
        "Globex",
        True,
    ),
    (
        "00T5e00000AbCdG",
        "Left voicemail",
        "Outbound",
        31,
        (3, 11, 16, 45),
        "Lee Chan",
        "Initech",
        False,
    ),
    (
        "00T5e00000AbCdH",
        "Renewal, 2025",
        "Outbound",
        2210,
        (3, 14, 11, 0),
        "Lee Chan",
        "Umbrella",
        True,
    ),
    (
        "00T5e00000AbCdI",
        'Demo for "Hooli"',
        "Inbound",
        3021,
        (3, 21, 15, 15),
        "Dana Park",
        "Hooli",
        True,
    ),
    ("00T5e00000AbCdJ", "Kick-off", "Outbound", 1200, (4, 2, 10, 0), "Ana Ng", "Acme Corp", True),
]
SALESFORCE_FOOTER = [
    [],
    ["Grand Totals (6 records)"],
    [],
    ["Confidential Information - Do Not Distribute"],
    ["Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."],
]


def us_time(month: int, day: int, hour: int, minute: int) -> str:
    """Salesforce's en_US format: 3/5/2024 2:30 PM."""
    suffix = "AM" if hour < 12 else "PM"
    return f"{month}/{day}/2024 {(hour - 1) % 12 + 1}:{minute:02d} {suffix}"


def salesforce_cells(row: tuple, when: object) -> list[object]:
    sid, subject, direction, seconds, _, owner, account, has_media = row
    media = f"{MEDIA}/sf/{sid}.mp3" if has_media else ""
    return [sid, subject, direction, seconds, when, owner, account, media, ""]


def write_csv(
    path: Path, rows: list[list[object]], delimiter: str = ",", encoding: str = "utf-8"
) -> None:
    with path.open("w", encoding=encoding, newline="") as handle:
        csv.writer(handle, delimiter=delimiter, quoting=csv.QUOTE_ALL).writerows(rows)


def salesforce() -> None:
    lines = [SALESFORCE_HEADER]
    lines += [salesforce_cells(r, us_time(*r[4])) for r in SALESFORCE_ROWS]
    write_csv(OUT / "salesforce_calls.csv", [*lines, *SALESFORCE_FOOTER])

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Calls with recordings"
    sheet.append(SALESFORCE_HEADER)
    for r in SALESFORCE_ROWS:
        month, day, hour, minute = r[4]
        sheet.append(salesforce_cells(r, dt.datetime(2024, month, day, hour, minute)))
    for line in SALESFORCE_FOOTER:
        sheet.append(line or [None])
    book.save(OUT / "salesforce_calls.xlsx")

    api = [
        [
            "Id",
            "Subject",
            "CallType",
            "CallDurationInSeconds",
            "ActivityDate",
            "CreatedDate",
            "WhoId",
            "WhatId",
            "Recording_URL__c",
        ]
    ]
    for r in SALESFORCE_ROWS[:4]:
        month, day, hour, minute = r[4]
        media = f"{MEDIA}/sf/{r[0]}.mp3" if r[7] else ""
        api.append(
            [
                r[0],
                r[1],
                r[2],
                r[3],
                f"2024-{month:02d}-{day:02d}",
                f"2024-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00.000+0000",
                "0035e00000XyZaB",
                "0015e00000QrStU",
                media,
            ]
        )
    write_csv(OUT / "salesforce_api.csv", api)


HUBSPOT_HEADER = [
    "Record ID",
    "Call Title",
    "Activity date",
    "Call direction",
    "Call outcome",
    "Call duration (HH:mm:ss)",
    "Recording URL",
    "Activity assigned to",
    "Call notes",
]
HUBSPOT_ROWS = [
    (
        "48213307761",
        "Intro call with Café Müller",
        (3, 4, 8, 15),
        "Outbound call",
        "Connected",
        "00:21:14",
    ),
    (
        "48213307762",
        "Follow-up: pricing (€)",
        (3, 8, 13, 0),
        "Inbound call",
        "Connected",
        "00:09:02",
    ),
    (
        "48213307763",
        "Renewal – Jürgen & Zoë",
        (3, 19, 17, 40),
        "Outbound call",
        "Connected",
        "00:33:48",
    ),
    (
        "48213307764",
        "Quick check-in",
        (3, 27, 10, 5),
        "Outbound call",
        "Left voicemail",
        "00:00:41",
    ),
]


def salesforce_grouped_lines(when: object) -> list[list[object]]:
    """A Lightning report grouped by Assigned, as "Formatted Report" writes it: a heading
    row per group (and "-" for the blank group), a Subtotal row after each group."""
    width = len(SALESFORCE_HEADER) + 1
    lines: list[list[object]] = [["Rep", *SALESFORCE_HEADER]]
    for heading, owner in (("Dana Park", "Dana Park"), ("Lee Chan", "Lee Chan"), ("-", "Ana Ng")):
        group = [r for r in SALESFORCE_ROWS if r[5] == owner]
        lines.append([heading, *[""] * (width - 1)])
        lines += [["", *salesforce_cells(r, when(r))] for r in group]
        lines.append(["Subtotal", *[""] * (width - 3), f"Count: {len(group)}", ""])
    lines.append(["Grand Total", *[""] * (width - 3), f"Count: {len(SALESFORCE_ROWS)}", ""])
    return lines


def salesforce_grouped() -> None:
    rows = salesforce_grouped_lines(lambda r: us_time(*r[4]))
    write_csv(OUT / "salesforce_grouped.csv", rows)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Calls by rep"])
    sheet.append(["As of Mar 31, 2024 5:00 PM"])
    sheet.append([])
    for line in salesforce_grouped_lines(lambda r: dt.datetime(2024, *r[4])):
        sheet.append([cell if cell != "" else None for cell in line])
    book.save(OUT / "salesforce_grouped.xlsx")


def hubspot() -> None:
    def lines(when: object) -> list[list[object]]:
        rows: list[list[object]] = [HUBSPOT_HEADER]
        for rid, title, moment, direction, outcome, duration in HUBSPOT_ROWS:
            rows.append(
                [
                    rid,
                    title,
                    when(*moment),
                    direction,
                    outcome,
                    duration,
                    f"{MEDIA}/hs/{rid}.mp3",
                    "Dana Park",
                    "",
                ]
            )
        return rows

    def us(month: int, day: int, hour: int, minute: int) -> str:
        twelve = (hour - 1) % 12 + 1
        return f"{month:02d}/{day:02d}/2024 {twelve:02d}:{minute:02d} {'AM' if hour < 12 else 'PM'}"

    def eu(month: int, day: int, hour: int, minute: int) -> str:
        return f"{day:02d}/{month:02d}/2024 {hour:02d}:{minute:02d}"

    write_csv(OUT / "hubspot_calls.csv", lines(us))
    write_csv(OUT / "hubspot_calls_semicolon.csv", lines(eu), delimiter=";")
    write_csv(OUT / "hubspot_calls_cp1252.csv", lines(us), encoding="cp1252")


GONG_IDS = [
    "7782342274025937001",
    "7782342274025937002",
    "7782342274025937013",
    "1183920044517283305",
]


def gong() -> None:
    started = [dt.datetime(2024, 3, d, 15, 0, tzinfo=dt.timezone.utc) for d in (5, 6, 12, 13)]
    columns = {
        "id": GONG_IDS,
        "url": [f"https://app.gong.io/call?id={i}" for i in GONG_IDS],
        "title": [
            "Acme | Discovery",
            "Globex weekly sync",
            "Initech - Security review",
            "Hooli demo",
        ],
        "scheduled": started,
        "started": started,
        "duration": [1802, 2410, 3300, 1500],
        "primaryUserId": ["234599484848423"] * 4,
        "direction": ["Conference", "Conference", "Outbound", "Conference"],
        "scope": ["External", "Internal", "External", "External"],
        "media": ["Video", "Video", "Audio", "Video"],
        "mediaUrl": [f"{MEDIA}/gong/{i}.mp4" for i in GONG_IDS],
        "participants": [
            "Ana Ng (ana@acme.com), Ben Wu",
            "Dana Park (dana@ourco.com), Lee Chan (lee@ourco.com)",
            "Sam Roe (sam@initech.com)",
            "Ana Ng (ana@acme.com), Gavin Belson (gavin@hooli.com), Ben Wu",
        ],
        "parties": [
            [
                {"name": "Ana Ng", "emailAddress": "ana@acme.com", "speakerId": "1"},
                {"name": "Ben Wu", "emailAddress": None, "speakerId": "2"},
            ],
            [{"name": "Dana Park", "emailAddress": "dana@ourco.com", "speakerId": "1"}],
            [{"name": "Sam Roe", "emailAddress": "sam@initech.com", "speakerId": "1"}],
            [{"name": "Gavin Belson", "emailAddress": "gavin@hooli.com", "speakerId": "3"}],
        ],
    }
    pq.write_table(pa.table(columns), OUT / "gong_calls.parquet")
    # What a pandas or Excel round trip does to Gong's 19-digit ids.
    floats = dict(columns, id=pa.array([float(i) for i in GONG_IDS], pa.float64()))
    pq.write_table(pa.table(floats), OUT / "gong_calls_float_ids.parquet")


def zoom() -> None:
    header = [
        "Topic",
        "Meeting ID",
        "Host Email",
        "Start Time",
        "Duration (Minutes)",
        "Participants",
        "Download URL",
    ]
    rows = [
        [
            "Weekly pipeline review",
            "84512345671",
            "dana@ourco.com",
            "Mar 5, 2024 02:30 PM",
            "45",
            "dana@ourco.com; lee@ourco.com",
            f"{MEDIA}/zoom/84512345671.mp4",
        ],
        [
            "Acme onboarding",
            "84512345672",
            "lee@ourco.com",
            "Mar 6, 2024 09:00 AM",
            "60",
            "Lee Chan <lee@ourco.com>; Ana Ng <ana@acme.com>",
            f"{MEDIA}/zoom/84512345672.mp4",
        ],
        [
            "Board prep",
            "84512345673",
            "dana@ourco.com",
            "Mar 12, 2024 11:15 AM",
            "30",
            "",
            f"{MEDIA}/zoom/84512345673.mp4",
        ],
    ]
    write_csv(OUT / "zoom_recordings.csv", [header, *rows])


# Outreach's call table as its data export writes it (the API's attributes, upper-cased:
# ID, DIALED_AT, RECORDING_URL ...): UTC times without a zone, no subject column, and
# calls nobody answered (no recording, or only a voicemail's).
OUTREACH_HEADER = [
    "ID",
    "CREATED_AT",
    "DIALED_AT",
    "ANSWERED_AT",
    "COMPLETED_AT",
    "DIRECTION",
    "OUTCOME",
    "STATE",
    "FROM",
    "TO",
    "NOTE",
    "RECORDING_URL",
    "VOICEMAIL_RECORDING_URL",
    "USER_ID",
    "PROSPECT_ID",
    "SEQUENCE_ID",
    "CALL_PURPOSE_ID",
    "CALL_DISPOSITION_ID",
]
# (id, dialed, answered, direction, outcome, note, recording, voicemail)
OUTREACH_ROWS = [
    (40211, (3, 5, 14, 30, 2), True, "outbound", "Answered", "Intro, asked for pricing", True),
    (40212, (3, 5, 15, 2, 41), False, "outbound", "Not Answered", "", False),
    (40215, (3, 6, 9, 0, 12), True, "inbound", "Answered", "Called back re: renewal", True),
    (40219, (3, 7, 16, 45, 0), False, "outbound", "Not Answered", "Left voicemail", False),
    (40230, (3, 8, 11, 20, 5), True, "outbound", "Answered", "", True),
]


def outreach() -> None:
    rows: list[list[object]] = [OUTREACH_HEADER]
    for ident, (
        month,
        day,
        hour,
        minute,
        second,
    ), answered, direction, outcome, note, rec in OUTREACH_ROWS:
        dialed = dt.datetime(2024, month, day, hour, minute, second)
        answer = dialed + dt.timedelta(seconds=9)
        done = answer + dt.timedelta(seconds=410 if answered else 31)
        voicemail = f"{MEDIA}/outreach/vm-{ident}.mp3" if note == "Left voicemail" else ""
        rows.append(
            [
                ident,
                f"{dialed:%Y-%m-%d %H:%M:%S}.000",
                f"{dialed:%Y-%m-%d %H:%M:%S}.000",
                f"{answer:%Y-%m-%d %H:%M:%S}.000" if answered else "",
                f"{done:%Y-%m-%d %H:%M:%S}.000",
                direction,
                outcome,
                "completed",
                "+14155550134" if direction == "outbound" else "+12125550187",
                "+12125550187" if direction == "outbound" else "+14155550134",
                note,
                f"{MEDIA}/outreach/{ident}.mp3" if rec else "",
                voicemail,
                7,
                9120 + ident % 7,
                311,
                4,
                2 if answered else 5,
            ]
        )
    write_csv(OUT / "outreach_calls.csv", rows)


# Issue 17's exports: naive local times, weekday dates, Date and Time columns, two email
# columns, a repeating Zoom Meeting ID, a head count, people's names beside titles.
HUBSPOT_NIGHT1 = [
    [
        "Record ID",
        "Meeting Name",
        "Meeting start time",
        "Meeting end time",
        "Activity assigned to",
        "Associated Contact",
        "Meeting outcome",
        "Recording URL",
    ],
    [
        "71002001",
        "Acme discovery",
        "2025-11-05 14:15",
        "2025-11-05 14:45",
        "Ben Wu",
        "Ana Ng (ana.ng@acme.com)",
        "Completed",
        "https://recordings.example.com/hubspot/71002001.mp4",
    ],
    [
        "71002002",
        "Globex QBR",
        "2025-11-05 16:00",
        "2025-11-05 17:00",
        "Ben Wu",
        "Raj Patel (raj@globex.com)",
        "Completed",
        "https://recordings.example.com/hubspot/71002002.mp4",
    ],
]
"""The first night's HubSpot meetings export; the second night adds a row."""

HUBSPOT_NIGHT2_NEW = [
    [
        "71002003",
        "Initech demo",
        "2025-11-06 10:30",
        "2025-11-06 11:15",
        "Cara Diaz",
        "Li Wei (li.wei@initech.com)",
        "Completed",
        "https://recordings.example.com/hubspot/71002003.mp4",
    ],
]


ZONE_EXPORTS: dict[str, list[list[str]]] = {
    "zoom_recordings_recurring": [
        [
            "Topic",
            "Meeting ID",
            "Host Email",
            "Start Time",
            "File Size (MB)",
            "Participants",
            "Download URL",
        ],
        [
            "Weekly pipeline review",
            "854 1234 5678",
            "dana@ourco.com",
            "Nov 5, 2025 02:15 PM",
            "84.2",
            "Dana Holt <dana@ourco.com>; lee@ourco.com",
            "https://recordings.example.com/zoom/85412345678-1105.mp4",
        ],
        [
            "Weekly pipeline review",
            "854 1234 5678",
            "dana@ourco.com",
            "Nov 12, 2025 02:15 PM",
            "91.7",
            "dana@ourco.com; Ana Ng <ana@acme.com>",
            "https://recordings.example.com/zoom/85412345678-1112.mp4",
        ],
        [
            "Acme onboarding",
            "861 5550 1212",
            "lee@ourco.com",
            "Nov 6, 2025 09:00 AM",
            "120.4",
            "Lee Chan <lee@ourco.com>",
            "https://recordings.example.com/zoom/86155501212.mp4",
        ],
    ],
    "zoom_meeting_report": [
        [
            "Meeting ID",
            "Topic",
            "Start Time",
            "End Time",
            "User Email",
            "Duration (Minutes)",
            "Participants",
            "Recording Link",
        ],
        [
            "86155501212",
            "Acme onboarding",
            "11/06/2025 09:00:12 AM",
            "11/06/2025 09:58:40 AM",
            "lee@ourco.com",
            "59",
            "3",
            "https://recordings.example.com/zoom/86155501212.mp4",
        ],
        [
            "86155501299",
            "Globex renewal",
            "11/13/2025 04:30:00 PM",
            "11/13/2025 05:02:10 PM",
            "dana@ourco.com",
            "33",
            "5",
            "https://recordings.example.com/zoom/86155501299.mp4",
        ],
    ],
    "aircall_calls": [
        [
            "id",
            "direction",
            "started_at",
            "answered_at",
            "ended_at",
            "duration",
            "number_name",
            "raw_digits",
            "user_name",
            "user_email",
            "contact_name",
            "contact_email",
            "recording",
            "missed_call_reason",
        ],
        [
            "1844201",
            "outbound",
            "Wed 11/05/2025 2:15:07 PM",
            "Wed 11/05/2025 2:15:19 PM",
            "Wed 11/05/2025 2:31:40 PM",
            "993",
            "US Sales",
            "+1 212-555-0187",
            "Ben Wu",
            "ben.wu@ourco.com",
            "Ana Ng",
            "ana.ng@acme.com",
            "https://recordings.example.com/aircall/1844201.mp3",
            "",
        ],
        [
            "1844202",
            "inbound",
            "Thu 11/06/2025 9:02:44 AM",
            "Thu 11/06/2025 9:02:51 AM",
            "Thu 11/06/2025 9:10:02 AM",
            "438",
            "US Sales",
            "+1 415-555-0134",
            "Cara Diaz",
            "cara.diaz@ourco.com",
            "",
            "",
            "https://recordings.example.com/aircall/1844202.mp3",
            "",
        ],
    ],
    "outreach_calls_emails": [
        [
            "ID",
            "Dialed At",
            "Direction",
            "Purpose",
            "Disposition",
            "Prospect Name",
            "Prospect Email",
            "User Name",
            "User Email",
            "Recording URL",
            "Note",
        ],
        [
            "50311",
            "2025-11-05 14:15:07",
            "outbound",
            "Discovery",
            "Connected",
            "Ana Ng",
            "ana.ng@acme.com",
            "Ben Wu",
            "ben.wu@ourco.com",
            "https://recordings.example.com/outreach/50311.mp3",
            "Asked for pricing",
        ],
        [
            "50312",
            "2025-11-06 09:30:00",
            "outbound",
            "Follow up",
            "Connected",
            "Raj Patel",
            "raj@globex.com",
            "Ben Wu",
            "ben.wu@ourco.com",
            "https://recordings.example.com/outreach/50312.mp3",
            "",
        ],
    ],
    "sheets_calls": [
        ["Call ID", "Date", "Time", "Subject", "Customer Email", "Rep Email", "Recording Link"],
        [
            "SH-001",
            "11/05/2025",
            "2:15 PM",
            "Intro with Acme",
            "ana.ng@acme.com",
            "ben.wu@ourco.com",
            "https://recordings.example.com/sheets/sh-001.mp3",
        ],
        [
            "SH-002",
            "11/13/2025",
            "10:00 AM",
            "Globex pricing",
            "raj@globex.com",
            "ben.wu@ourco.com",
            "https://recordings.example.com/sheets/sh-002.mp3",
        ],
    ],
    "ringcentral_calls": [
        [
            "Session Id",
            "Type",
            "Direction",
            "From",
            "From Name",
            "To",
            "To Name",
            "Date",
            "Time",
            "Action",
            "Action Result",
            "Duration",
            "Recording URL",
        ],
        [
            "24701550011",
            "Voice",
            "Outbound",
            "(212) 555-0187",
            "Ben Wu",
            "(415) 555-0134",
            "Ana Ng",
            "Wed 11/05/2025",
            "2:15:07 PM",
            "Phone Call",
            "Call connected",
            "0:16:33",
            "https://recordings.example.com/ringcentral/24701550011.mp3",
        ],
        [
            "24701550012",
            "Voice",
            "Inbound",
            "(646) 555-0100",
            "Raj Patel",
            "(212) 555-0187",
            "Ben Wu",
            "Thu 11/13/2025",
            "9:02:44 AM",
            "Phone Call",
            "Accepted",
            "0:07:18",
            "https://recordings.example.com/ringcentral/24701550012.mp3",
        ],
    ],
    "hubspot_meetings_night1": HUBSPOT_NIGHT1,
    "hubspot_meetings_night2": [*HUBSPOT_NIGHT1, *HUBSPOT_NIGHT2_NEW],
}


def zone_exports() -> None:
    for name, rows in ZONE_EXPORTS.items():
        with (OUT / f"{name}.csv").open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(rows)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    salesforce()
    salesforce_grouped()
    hubspot()
    gong()
    zoom()
    outreach()
    zone_exports()
    print(f"Wrote {', '.join(sorted(p.name for p in OUT.iterdir()))}")
