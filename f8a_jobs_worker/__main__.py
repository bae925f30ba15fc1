"""Allow ``python -m f8a_jobs_worker``."""

from f8a_jobs_worker.cli.main import main

main()
