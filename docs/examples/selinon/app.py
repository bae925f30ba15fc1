"""The Celery application of the example pipeline: ``celery -A app worker`` in this directory.

Selinon's dispatchers read the states of the tasks from a result backend: PostgreSQL here.
"""

import os

from celery import Celery
from selinon import Config

app = Celery(
    "example_pipeline",
    broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    backend=os.environ.get(
        "CELERY_RESULT_BACKEND", "db+postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    ),
)
app.conf.broker_connection_retry_on_startup = True
Config.set_celery_app(app)
Config.set_config_yaml("nodes.yml", ["flows.yml"])
