"""f8a-jobs-worker: the job service of the fabric8-analytics pipeline, driven by queue messages."""

__version__ = "0.2.0"
