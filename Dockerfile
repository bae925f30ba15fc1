FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY f8a_jobs_worker ./f8a_jobs_worker
COPY schemas ./schemas
COPY default_jobs ./default_jobs
RUN pip install --no-cache-dir . && useradd --create-home worker
USER worker
WORKDIR /home/worker
ENTRYPOINT ["f8a-jobs-worker"]
CMD ["run"]
