"""``schedule.preview`` on the in-memory transport: descriptions of cron lines, the runs listed, the changes
of offset with what the schedule does at each, and the errors of bad arguments."""

from __future__ import annotations

import pytest

from f8a_jobs_worker.client import Client
from f8a_jobs_worker.errors import JobsError
from f8a_jobs_worker.scheduling.describe import describe_cron


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("0 6 * * 1-5", "at 06:00 on Monday to Friday"),
        ("0 9 * * mon-fri", "at 09:00 on Monday to Friday"),
        ("0 2 * * *", "at 02:00 every day"),
        ("0,30 8,20 * * *", "at 08:00, 08:30, 20:00 and 20:30 every day"),
        ("*/15 * * * *", "every 15 minutes"),
        ("* * * * *", "every minute"),
        ("0 */2 * * *", "at minute 0 of every 2nd hour"),
        ("30 9-17 * * *", "at minute 30 of hours 09 to 17"),
        ("*/10 9-17 * * 1-5", "every 10 minutes of hours 09 to 17 on Monday to Friday"),
        ("5 * * * 0,6", "at minute 5 of every hour on Sunday and Saturday"),
        ("0 0 1 * *", "at 00:00 on day 1 of the month"),
        ("0 3 1-7 * 0", "at 03:00 on days 1 to 7 of the month if it is a Sunday"),
        ("0 6 1 * 1", "at 06:00 on day 1 of the month if it is a Monday"),
        ("0 12 * 1,7 *", "at 12:00 every day in January and July"),
        ("15 10 * jan-mar *", "at 10:15 every day in January to March"),
        ("0 0 last * *", "at 00:00 on day-of-month 'last'"),
    ],
)
def test_cron_lines_in_words(line: str, words: str) -> None:
    assert describe_cron(line, "Europe/Prague") == f"{words}, Europe/Prague"


def test_a_preview_lists_runs_in_both_times_and_the_changes_between(
    unit_worker, client: Client
) -> None:
    unit_worker()  # the clock stands at 2030-03-01 12:00 UTC
    result = client.call(
        "schedule.preview",
        cron="30 * * * *",
        timezone="America/New_York",
        count=48,
        start="2030-11-02T23:00",
    )
    assert result["description"] == "at minute 30 of every hour, America/New_York"
    assert result["runs"][0] == {
        "at": "2030-11-03T03:30:00+00:00",
        "local": "2030-11-02T23:30:00-04:00",
    }
    (change,) = result["changes"]
    assert change["at"] == "2030-11-03T06:00:00+00:00"
    assert (change["offset_before"], change["offset_after"], change["kind"]) == (
        "-04:00",
        "-05:00",
        "back",
    )
    assert change["wall_times"] == ["01:30"]
    assert [run["local"] for run in change["runs"]] == [
        "2030-11-03T01:30:00-04:00",
        "2030-11-03T01:30:00-05:00",
    ]
    assert change["effect"] == (
        "clocks go back from 02:00 to 01:00: 01:30 happens twice; it runs at both (-04:00, -05:00)"
    )


def test_an_interval_keeps_elapsed_time_across_a_change(unit_worker, client: Client) -> None:
    unit_worker()
    result = client.call(
        "schedule.preview",
        periodically="1 day",
        timezone="Europe/Prague",
        count=3,
        start="2030-03-30T06:00",
        jitter=30,
    )
    assert result["description"] == (
        "every 1 day of elapsed time (its local times move when Europe/Prague changes its offset)"
        "; each run up to 30 s later at random"
    )
    assert [run["local"][11:16] for run in result["runs"]] == ["06:00", "07:00", "07:00"]
    assert result["jitter"] == 30
    assert result["changes"][0]["effect"].endswith("local times move by +1 h")


@pytest.mark.parametrize(
    ("args", "code", "path"),
    [
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "validation_error", "$.args.timezone"),
        ({"cron": "0 2 * * *", "count": 1001}, "validation_error", "$.args.count"),
        ({"timezone": "UTC"}, "validation_error", "$.args"),
        ({"cron": "0 25 * * *"}, "invalid_schedule", "$.args.cron"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(
    unit_worker, client: Client, args: dict, code: str, path: str
) -> None:
    unit_worker()
    with pytest.raises(JobsError) as caught:
        client.call("schedule.preview", **args)
    assert caught.value.code == code
    assert caught.value.details[0]["path"] == path
