"""The original service's own default job files (tests/data/original_default_jobs, copied from its
repository) rewritten by `f8a-jobs-worker migrate-default-jobs`, then checked and loaded by this service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import eventually
from tests.process import clean_env

ORIGINAL = Path(__file__).parent / "data" / "original_default_jobs"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "f8a_jobs_worker", *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_original_files_are_migrated_and_then_load(tmp_path: Path, make_worker) -> None:
    f8a_jobs, bayesian = tmp_path / "f8a_jobs", tmp_path / "bayesian_jobs"
    migrated = cli("migrate-default-jobs", str(ORIGINAL / "f8a_jobs"), str(f8a_jobs))
    assert migrated.returncode == 1  # one handler does not exist here
    lines = migrated.stdout.splitlines()
    assert (
        "changed githubGatheringJob.yaml: handler SelectiveFlowScheduling -> "
        "selective_flow_scheduling; flow_name, task_names, flow_arguments moved under kwargs; "
        "empty when dropped"
    ) in lines
    assert [line for line in lines if line.startswith("cannot")] == [
        "cannot  mavenReleasesJob.yaml: handler 'MavenReleasesAnalyses' does not exist here "
        "(kept as written); empty when dropped"
    ]
    assert lines[-1] == f"4 migrated, 1 need attention, in {f8a_jobs}"
    checked = cli("check-default-jobs", "--dir", str(f8a_jobs))
    errors = [line for line in checked.stdout.splitlines() if line.startswith("error")]
    assert errors == [
        "error  mavenReleasesJob.yaml: unknown handler 'MavenReleasesAnalyses' (registered: "
        "fail, flow_scheduling, noop, record, selective_flow_scheduling, sleep)"
    ]
    job = yaml.safe_load((f8a_jobs / "githubGatheringJob.yaml").read_text())
    assert job["handler"] == "selective_flow_scheduling"
    assert job["kwargs"]["flow_name"] == "bayesianPackageFlow"
    assert job["kwargs"]["flow_arguments"][0]["$filter"]["table"] == "monitored_upstreams"
    assert (job["periodically"], job["misfire_grace_time"], job["state"]) == (
        "14 days",
        "99999 days",
        "running",
    )
    assert "when" not in job

    # the bayesian files nest kwargs already; two of them define the same job
    migrated = cli("migrate-default-jobs", str(ORIGINAL / "bayesian_jobs"), str(bayesian))
    assert migrated.returncode == 1
    assert [line for line in migrated.stdout.splitlines() if line.startswith("cannot")] == [
        "cannot  cveCheckJob.yaml: job_id 'cveCheckJob' is also the job of cveCheck.yaml: keep "
        "one of the two files; handler FlowScheduling -> flow_scheduling; empty when dropped"
    ]
    checked = cli("check-default-jobs", "--dir", str(bayesian))
    assert [line for line in checked.stdout.splitlines() if line.startswith("error")] == [
        "error  cveCheckJob.yaml: job_id 'cveCheckJob' is already defined in cveCheck.yaml"
    ]

    # loaded by a worker on PostgreSQL: the jobs are there with their kwargs and states
    (f8a_jobs / "mavenReleasesJob.yaml").unlink()
    worker = make_worker(default_jobs_dir=f8a_jobs, threads=1)
    assert worker.default_jobs is not None and not worker.default_jobs.errors
    views = {
        job["job_id"]: job
        for job in worker.service.list_jobs(job_type="default", limit=100)["jobs"]
    }
    assert set(views) == {"bigQueryJob", "cveCheckJob", "cveMavenCheckJob", "githubGatheringJob"}
    assert views["bigQueryJob"]["state"] == "paused"
    assert views["cveMavenCheckJob"]["kwargs"]["task_names"] == [
        "security_issues",
        "ResultCollector",
        "GraphImporterTask",
    ]


def test_job_type_keeps_this_service_s_meanings(make_worker, tmp_path: Path) -> None:
    """docs/migration.md: `all` is user and default jobs (no failures), `user` excludes default jobs,
    `failed` lists failure records; the original's `all` is `all` plus `failed`."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "beat.yaml").write_text("job_id: beat\nhandler: noop\nperiodically: 1 hour\n")
    worker = make_worker(default_jobs_dir=jobs)
    worker.service.create_job("noop", job_id="mine", when="2099-01-01")
    worker.service.create_job("fail", job_id="broken-once")
    eventually(lambda: worker.service.list_jobs(job_type="failed")["jobs"], timeout=10)

    def ids(job_type: str) -> set[str]:
        return {job["job_id"] for job in worker.service.list_jobs(job_type=job_type)["jobs"]}

    assert ids("all") == {"beat", "mine"}
    assert ids("user") == {"mine"}
    assert ids("default") == {"beat"}
    failures = worker.service.list_jobs(job_type="failed")["jobs"]
    assert [f["failed_job_id"] for f in failures] == ["broken-once"]
