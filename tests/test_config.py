"""Settings from the environment and flags; URLs as they may be logged."""

from __future__ import annotations

from pathlib import Path

import pytest

from f8a_jobs_worker.config import DEFAULT_DATABASE_URL, ConfigError, Settings, redact_url


def test_defaults_need_no_server() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url.startswith("sqlite:///")
    assert settings.broker_url is None
    assert settings.effective_analytics_database_url == settings.database_url
    assert settings.default_jobs_dir.name == "default_jobs"
    assert settings.misfire_grace_time == 3600


def test_environment_then_flags() -> None:
    env = {
        "F8A_JOBS_DATABASE_URL": "postgresql://db/jobs",
        "F8A_JOBS_ANALYTICS_DATABASE_URL": "postgresql://db/analytics",
        "F8A_JOBS_DEFAULT_JOBS_DIR": "/etc/jobs",
        "F8A_JOBS_THREADS": "3",
        "F8A_JOBS_MISFIRE_GRACE_TIME": "none",
        "F8A_JOBS_LOG_LEVEL": "debug",
        "OTHER": "ignored",
    }
    settings = Settings.from_env(env, threads=7, database_url=None)
    assert settings.database_url == "postgresql://db/jobs"
    assert settings.effective_analytics_database_url == "postgresql://db/analytics"
    assert settings.default_jobs_dir == Path("/etc/jobs")
    assert settings.threads == 7
    assert settings.misfire_grace_time is None
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"F8A_JOBS_DATABSE_URL": "x"}, "did you mean F8A_JOBS_DATABASE_URL?"),
        ({"F8A_JOBS_THREADS": "many"}, "F8A_JOBS_THREADS: cannot use 'many'"),
        ({"F8A_JOBS_THREADS": "0"}, "at least 1"),
        ({"F8A_JOBS_MISFIRE_GRACE_TIME": "0"}, ">= 1 second"),
        ({"F8A_JOBS_DATABASE_URL": "mysql://db/jobs"}, "unsupported database 'mysql'"),
        ({"F8A_JOBS_DATABASE_URL": "postgresql+pg8000://db/jobs"}, "unsupported database"),
        ({"F8A_JOBS_DATABASE_URL": "jobs.sqlite"}, "cannot parse the URL"),
        ({"F8A_JOBS_DATABASE_URL": "postgresql://u:s3cret@db:port/jobs"}, r"u:\*\*\*@db:port"),
        ({"F8A_JOBS_ANALYTICS_DATABASE_URL": "oracle://db"}, "ANALYTICS_DATABASE_URL"),
        ({"F8A_JOBS_BROKER_URL": "redis://localhost"}, "unsupported broker scheme 'redis'"),
        ({"F8A_JOBS_BROKER_URL": "amqp://h:notaport//"}, "cannot parse the URL"),
        ({"F8A_JOBS_COMMANDS_QUEUE": "jobs-commands"}, "F8A_JOBS_COMMANDS_QUEUE 'jobs-commands'"),
        ({"F8A_JOBS_REPLICA_LAPSE": "1"}, "REPLICA_LAPSE must be 2 to 300 seconds"),
        ({"F8A_JOBS_POLL_INTERVAL": "0"}, "POLL_INTERVAL must be 0.1 to 3600 seconds"),
        ({"F8A_JOBS_BATCH_WAIT": "-1"}, "BATCH_WAIT must be 0 to 5 seconds"),
        ({"F8A_JOBS_BATCH_WAIT": "30"}, "BATCH_WAIT must be 0 to 5 seconds"),
    ],
)
def test_bad_settings_are_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")) as caught:
        Settings.from_env(env)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:pw@db:5432/jobs",
        "postgres://db/jobs",
        "postgresql+psycopg2://db/jobs",
        "postgresql+psycopg://db/jobs",
        "sqlite:///jobs.sqlite",
        "sqlite://",
    ],
)
def test_the_database_url_forms_users_write(url: str) -> None:
    from f8a_jobs_worker.persistence.database import database_url

    Settings.from_env({"F8A_JOBS_DATABASE_URL": url})
    assert database_url(url).drivername in {"postgresql+psycopg", "sqlite"}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://user:secret@db:5432/jobs", "postgresql://user:***@db:5432/jobs"),
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
        ("sqs://AKIA:wJalr%2Fsecret@127.0.0.1:4566", "sqs://AKIA:***@127.0.0.1:4566"),
        ("sqlite:///f8a-jobs.sqlite", "sqlite:///f8a-jobs.sqlite"),
        ("postgresql://db/jobs", "postgresql://db/jobs"),
    ],
)
def test_redaction(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_repr_never_shows_passwords() -> None:
    settings = Settings(
        database_url="postgresql://u:hunter2@db/jobs", broker_url="amqp://u:hunter3@mq//"
    )
    assert "hunter" not in repr(settings)


def test_every_setting_is_in_the_readme() -> None:
    """The README's configuration table is the users' list of settings: none may be missing from it."""
    from dataclasses import fields

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [f.name for f in fields(Settings) if f"`F8A_JOBS_{f.name.upper()}`" not in readme]
    assert missing == []
