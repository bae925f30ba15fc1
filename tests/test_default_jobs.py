"""Default jobs from YAML: added, updated in place, never duplicated, an operator's pause kept, bad files named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from f8a_jobs_worker.cli.main import cli
from tests.helpers import sink_of

LATER = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")


NIGHTLY = f"""
job_id: nightly
handler: noop
kwargs:
  message: first
periodically: 1 day
when: "{LATER}"
misfire_grace_time: 365 days
"""


LOCAL = """
job_id: local
handler: noop
calendar_interval: 1 day
when: "2030-01-01T06:00"
timezone: Europe/Prague
"""


def restart(make_worker, jobs_dir: Path):
    worker = make_worker(default_jobs_dir=jobs_dir)
    worker.stop()
    return worker


def test_new_job_is_added_and_marked_default(make_worker, empty_jobs_dir: Path) -> None:
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY)
    worker = make_worker(default_jobs_dir=empty_jobs_dir)
    view = worker.service.get_job("nightly")["job"]
    assert view["default"] is True
    assert (view["periodically_seconds"], view["misfire_grace_time"]) == (86400, 365 * 86400)
    assert view["next_run_time"] == LATER
    assert worker.default_jobs.added == ["nightly"]
    assert worker.service.list_jobs("default")["jobs_count"] == 1
    assert worker.service.list_jobs("user")["jobs_count"] == 0


def test_restarts_never_duplicate_or_reschedule(make_worker, empty_jobs_dir: Path) -> None:
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY.replace(f'when: "{LATER}"\n', ""))
    first = make_worker(default_jobs_dir=empty_jobs_dir)
    sink_of(first).wait_for("job.executed", "nightly")  # "when" omitted: the first run is now
    next_run = first.service.get_job("nightly")["job"]["next_run_time"]
    first.stop()
    second = make_worker(default_jobs_dir=empty_jobs_dir)
    assert (first.default_jobs.added, second.default_jobs.unchanged) == (["nightly"], ["nightly"])
    assert second.service.list_jobs()["jobs_count"] == 1
    # unchanged means untouched: no new first run, the next run time set by the first worker stands
    assert second.service.get_job("nightly")["job"]["next_run_time"] == next_run
    assert len(second.service.job_history("nightly")["runs"]) == 1


def test_changed_kwargs_update_in_place_keeping_next_run(make_worker, empty_jobs_dir: Path) -> None:
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY)
    before = restart(make_worker, empty_jobs_dir).service
    write(
        empty_jobs_dir,
        "nightly.yaml",
        NIGHTLY.replace("first", "second").replace("365 days", "1 day"),
    )
    worker = make_worker(default_jobs_dir=empty_jobs_dir)
    assert worker.default_jobs.updated == ["nightly"]
    view = worker.service.get_job("nightly")["job"]
    assert view["kwargs"] == {"message": "second"}
    assert view["misfire_grace_time"] == 86400
    assert view["next_run_time"] == LATER
    assert before is not worker.service


def test_changed_schedule_reschedules(make_worker, empty_jobs_dir: Path) -> None:
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY)
    restart(make_worker, empty_jobs_dir)
    write(
        empty_jobs_dir,
        "nightly.yaml",
        NIGHTLY.replace("periodically: 1 day", "cron: '0 5 * * *'").replace(
            f'when: "{LATER}"\n', ""
        ),
    )
    worker = make_worker(default_jobs_dir=empty_jobs_dir)
    view = worker.service.get_job("nightly")["job"]
    assert view["cron"] == "0 5 * * *"
    assert view["periodically"] is None
    assert datetime.fromisoformat(view["next_run_time"]).hour == 5


def test_operator_pause_survives_restarts_and_schedule_changes(
    make_worker, empty_jobs_dir: Path
) -> None:
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY)
    worker = make_worker(default_jobs_dir=empty_jobs_dir)
    worker.service.pause_job("nightly")
    worker.stop()
    again = make_worker(default_jobs_dir=empty_jobs_dir)
    assert again.service.get_job("nightly")["job"]["state"] == "paused"
    again.stop()
    # a changed schedule in the file reschedules, but the job stays paused (the original raised TypeError)
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY.replace("1 day", "2 days"))
    third = make_worker(default_jobs_dir=empty_jobs_dir)
    view = third.service.get_job("nightly")["job"]
    assert (view["state"], view["periodically_seconds"]) == ("paused", 172800)
    # and an operator's resume survives a restart of a job the file declares paused
    third.service.resume_job("nightly")
    third.stop()
    fourth = make_worker(default_jobs_dir=empty_jobs_dir)
    assert fourth.service.get_job("nightly")["job"]["state"] == "running"


def test_a_changed_state_in_the_file_is_applied(make_worker, empty_jobs_dir: Path) -> None:
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY)
    restart(make_worker, empty_jobs_dir)
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY + "state: paused\n")
    paused = make_worker(default_jobs_dir=empty_jobs_dir)
    assert paused.service.get_job("nightly")["job"]["state"] == "paused"
    paused.stop()
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY + "state: running\n")
    running = make_worker(default_jobs_dir=empty_jobs_dir)
    view = running.service.get_job("nightly")["job"]
    assert (view["state"], view["next_run_time"]) == ("running", LATER)


def test_bad_files_are_named_and_the_others_load(make_worker, empty_jobs_dir: Path) -> None:
    write(empty_jobs_dir, "a_good.yaml", NIGHTLY)
    write(empty_jobs_dir, "b_broken.yaml", "job_id: [unclosed\n")
    write(empty_jobs_dir, "c_unknown_handler.yaml", "job_id: c\nhandler: teleport\n")
    write(
        empty_jobs_dir, "d_bad_schedule.yaml", "job_id: d\nhandler: noop\nperiodically: 1 month\n"
    )
    write(empty_jobs_dir, "e_typo.yaml", "job_id: e\nhandler: noop\nperiodicaly: 1 day\n")
    write(empty_jobs_dir, "f_dup.yml", NIGHTLY)
    write(empty_jobs_dir, "g_bad_kwargs.yaml", "job_id: g\nhandler: noop\nkwargs: {colour: red}\n")
    write(empty_jobs_dir, "h_no_id.yaml", "handler: noop\n")
    worker = make_worker(default_jobs_dir=empty_jobs_dir)
    errors = worker.default_jobs.errors
    assert sorted(errors) == [
        "b_broken.yaml",
        "c_unknown_handler.yaml",
        "d_bad_schedule.yaml",
        "e_typo.yaml",
        "f_dup.yml",
        "g_bad_kwargs.yaml",
        "h_no_id.yaml",
    ]
    assert "unknown handler 'teleport'" in errors["c_unknown_handler.yaml"]
    assert "months and years" in errors["d_bad_schedule.yaml"]
    assert "periodicaly" in errors["e_typo.yaml"]
    assert "already defined in a_good.yaml" in errors["f_dup.yml"]
    assert "$.kwargs" in errors["g_bad_kwargs.yaml"]
    assert "job_id is required" in errors["h_no_id.yaml"]
    assert [j["job_id"] for j in worker.service.list_jobs()["jobs"]] == ["nightly"]


def test_a_user_job_with_the_same_id_is_not_overwritten(make_worker, empty_jobs_dir: Path) -> None:
    worker = make_worker(default_jobs_dir=empty_jobs_dir)
    worker.service.create_job(
        "noop", {"message": "mine"}, job_id="nightly", periodically="1h", when=LATER
    )
    worker.stop()
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY)
    again = make_worker(default_jobs_dir=empty_jobs_dir)
    assert "user job" in again.default_jobs.errors["nightly.yaml"]
    assert again.service.get_job("nightly")["job"]["kwargs"] == {"message": "mine"}


def test_the_shipped_default_jobs_load(make_worker) -> None:
    from f8a_jobs_worker import resources

    worker = make_worker(default_jobs_dir=resources.default_jobs_dir())
    assert worker.default_jobs.errors == {}
    assert "heartbeat" in worker.default_jobs.added
    sink_of(worker).wait_for("job.executed", "heartbeat")


def test_check_default_jobs_command(empty_jobs_dir: Path) -> None:
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY)
    runner = CliRunner()
    good = runner.invoke(cli, ["check-default-jobs", "--dir", str(empty_jobs_dir)])
    assert good.exit_code == 0, good.output
    assert "ok     nightly.yaml: nightly (noop, every 1 day of elapsed time)" in good.output
    write(empty_jobs_dir, "local.yaml", LOCAL)
    zoned = runner.invoke(cli, ["check-default-jobs", "--dir", str(empty_jobs_dir)])
    assert "ok     local.yaml: local (noop, every day at 06:00, Europe/Prague)" in zoned.output
    (empty_jobs_dir / "local.yaml").unlink()
    write(empty_jobs_dir, "zz.yaml", "job_id: z\nhandler: teleport\n")
    bad = runner.invoke(cli, ["check-default-jobs", "--dir", str(empty_jobs_dir)])
    assert bad.exit_code == 1
    assert "error  zz.yaml: unknown handler 'teleport'" in bad.output
    assert "1 valid, 1 invalid" in bad.output


def test_on_interrupt_is_read_from_the_file(make_worker, empty_jobs_dir: Path) -> None:
    write(empty_jobs_dir, "nightly.yaml", NIGHTLY + "on_interrupt: retry\n")
    write(
        empty_jobs_dir, "bad.yaml", NIGHTLY.replace("nightly", "bad") + "on_interrupt: sometimes\n"
    )
    worker = make_worker(default_jobs_dir=empty_jobs_dir)
    assert worker.service.get_job("nightly")["job"]["on_interrupt"] == "retry"
    assert worker.default_jobs is not None
    assert "on_interrupt must be one of report, retry" in worker.default_jobs.errors["bad.yaml"]


def test_time_zone_and_calendar_interval_are_read_from_the_file(
    make_worker, empty_jobs_dir: Path
) -> None:
    write(empty_jobs_dir, "local.yaml", LOCAL)
    write(
        empty_jobs_dir,
        "cron.yaml",
        LOCAL.replace("local", "cronned").replace(
            "calendar_interval: 1 day", 'cron: "0 6 * * 1-5"'
        ),
    )
    write(empty_jobs_dir, "bad.yaml", LOCAL.replace("local", "bad").replace("Prague", "Prag"))
    worker = make_worker(default_jobs_dir=empty_jobs_dir)
    local = worker.service.get_job("local")["job"]
    assert (local["timezone"], local["calendar_interval"]) == ("Europe/Prague", "1 day")
    assert local["next_run_time_local"] == "2030-01-01T06:00:00+01:00"
    cronned = worker.service.get_job("cronned")["job"]
    assert cronned["next_run_time_local"] == "2030-01-01T06:00:00+01:00"
    assert worker.default_jobs is not None
    assert "unknown time zone 'Europe/Prag'" in worker.default_jobs.errors["bad.yaml"]
