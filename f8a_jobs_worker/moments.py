"""Times written by clients: ISO 8601 dates and date-times, read as UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from f8a_jobs_worker.errors import ValidationFailed


def parse_iso(value: Any, field: str) -> datetime:
    """``YYYY-MM-DD`` or an ISO 8601 date-time as an aware UTC time (without a zone: UTC);
    validation_error naming ``field`` for anything else."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(
            f"{field}: expected a date (YYYY-MM-DD) or an ISO 8601 date-time, got {value!r}",
            [{"path": f"$.{field}", "message": "not an ISO 8601 date or date-time"}],
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
