"""Flow dispatch: the flow-run messages that flow engines (Selinon/Celery workers) consume."""
