FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY f8a_jobs_worker ./f8a_jobs_worker
COPY schemas ./schemas
COPY default_jobs ./default_jobs
RUN pip install --no-cache-dir . && useradd --create-home worker
USER worker
WORKDIR /home/worker
# with F8A_JOBS_METRICS_PORT set, `f8a-jobs-worker health` reads the worker's /livez and /readyz
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s CMD ["f8a-jobs-worker", "health"]
ENTRYPOINT ["f8a-jobs-worker"]
CMD ["run"]
