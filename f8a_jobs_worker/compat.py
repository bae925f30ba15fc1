"""The private parts of libraries this package relies on, and the releases they were checked against.

pyproject.toml bounds each library to its checked series; tests/test_private_apis.py fails when an installed
release is outside it or a private attribute listed here is gone, so an upgrade is a deliberate step: re-read
each use, run the suite, then widen the series here and the bound in pyproject.toml. docs/architecture.md
("Private APIs") says why each one is used.
"""

from __future__ import annotations

from typing import NamedTuple

#: private methods whose logic this package repeats with a change (not only calls): the SHA-256 of their source
#: as checked; any change to them, even in a patch release, is to be read before the digest is updated
REPEATED = {
    # JobScheduler._fire_due: APScheduler's pass, with runs claimed up to FIRE_AHEAD before their time
    "apscheduler.schedulers.base:BaseScheduler._process_jobs": (
        "efd3944de4e2c69e37ca668cf9ec6a5839501ab37593f559023cacc547a379b9"
    ),
}

#: distribution name -> the release series (major.minor) the private uses below were checked against
CHECKED = {"apscheduler": "3.11", "kombu": "5.7", "amqp": "5.4", "selinon": "1.4"}


class PrivateUse(NamedTuple):
    package: str
    target: str  # "module:Class.attribute"
    where: str
    why: str


PRIVATE = [
    PrivateUse(
        "apscheduler",
        "apscheduler.schedulers.base:BaseScheduler._process_jobs",
        "scheduling/runtime.py",
        "one transaction per pass; no pass after shutdown; store errors retried",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.job:Job._get_run_times",
        "scheduling/runtime.py",
        "the pass (JobScheduler._fire_due) is APScheduler's, with runs claimed ahead of their time",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.job:Job._modify",
        "scheduling/runtime.py",
        "the pass (JobScheduler._fire_due) is APScheduler's, with runs claimed ahead of their time",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.schedulers.base:BaseScheduler._lookup_executor",
        "scheduling/runtime.py",
        "the pass (JobScheduler._fire_due) is APScheduler's, with runs claimed ahead of their time",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.schedulers.base:BaseScheduler._dispatch_event",
        "scheduling/runtime.py",
        "the pass (JobScheduler._fire_due) is APScheduler's, with runs claimed ahead of their time",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.schedulers.base:BaseScheduler._jobstores",
        "scheduling/runtime.py",
        "the pass (JobScheduler._fire_due) is APScheduler's, with runs claimed ahead of their time",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.schedulers.base:BaseScheduler._jobstores_lock",
        "scheduling/runtime.py, scheduling/service.py",
        "a command's transaction and a scheduler pass never interleave",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.schedulers.background:BackgroundScheduler._thread",
        "scheduling/runtime.py",
        "liveness: the scheduler thread is running",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.jobstores.sqlalchemy:SQLAlchemyJobStore._reconstitute_job",
        "persistence/jobstore.py",
        "rows restored one by one, so one broken row is kept and reported, not deleted",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.job:Job._jobstore_alias",
        "scheduling/runtime.py",
        "a batch of new jobs built and inserted with one statement, marked stored as add_job marks them",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.job:Job.__setstate__",
        "scheduling/runtime.py",
        "a batch's new jobs built from their state (version 1) without Job()'s checks, done already",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.job:Job._scheduler",
        "scheduling/runtime.py",
        "a job built from its state is given its scheduler as Job() gives it",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.jobstores.sqlalchemy:SQLAlchemyJobStore._get_jobs",
        "persistence/jobstore.py",
        "listing with broken rows left out instead of deleted",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.executors.pool:BasePoolExecutor._do_submit_job",
        "scheduling/executor.py",
        "runs go to the JobRunner, not to a stored callable",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.executors.base:BaseExecutor._run_job_success",
        "scheduling/executor.py",
        "outcomes reported to the scheduler like its own executors do",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.executors.base:BaseExecutor._run_job_error",
        "scheduling/executor.py",
        "outcomes reported to the scheduler like its own executors do",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.executors.base:BaseExecutor._instances",
        "scheduling/executor.py",
        "job.run_now counts its run under the executor's lock before the command commits",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.executors.base:BaseExecutor._lock",
        "scheduling/executor.py",
        "job.run_now counts its run under the executor's lock before the command commits",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.executors.base:BaseExecutor._scheduler",
        "scheduling/executor.py",
        "the pass's unit of work, which a run joins",
    ),
    PrivateUse(
        "apscheduler",
        "apscheduler.executors.pool:BasePoolExecutor._pool",
        "scheduling/executor.py",
        "runs started after the commit that decided them",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.filesystem:Channel._put",
        "messaging/embedded.py",
        "atomic writes of message files",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.filesystem:Channel._get",
        "messaging/embedded.py",
        "a delivered message stays in an in-flight folder until acknowledged (kill -9 loses none)",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.virtual:Channel.do_restore",
        "messaging/embedded.py",
        "unacknowledged messages go back from the in-flight folder, not as copies",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.SQS:Channel._message_to_python",
        "messaging/sqs.py",
        "any SQS body read without raising; plain bodies kept as they arrived",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.pyamqp:Channel.Message",
        "messaging/amqp.py",
        "bodies as they arrived (no decompression)",
    ),
    PrivateUse(
        "kombu",
        "kombu.transport.virtual:Message._raw",
        "messaging/inbound.py",
        "the virtual transports' message built without raising",
    ),
    PrivateUse(
        "amqp",
        "amqp.serialization:GenericContent._load_properties",
        "messaging/amqp.py",
        "properties py-amqp cannot decode are kept raw instead of stopping the connection",
    ),
    PrivateUse(
        "amqp",
        "amqp.channel:Channel._basic_publish",
        "messaging/confirms.py",
        "publish without kombu's wait per message; confirms counted per batch",
    ),
    PrivateUse(
        "amqp",
        "amqp.abstract_channel:AbstractChannel.send_method",
        "messaging/confirms.py",
        "a batch published without a socket read before each message",
    ),
    PrivateUse(
        "amqp",
        "amqp.method_framing:frame_writer",
        "messaging/amqp.py",
        "a batch's frames written to the socket at once (corked)",
    ),
    PrivateUse(
        "amqp",
        "amqp.abstract_channel:AbstractChannel.auto_decode",
        "messaging/amqp.py",
        "bodies stay bytes whatever content_encoding says",
    ),
    PrivateUse(
        "selinon",
        "selinon.selective:compute_selective_run",
        "flows/selinon_backend.py",
        "a selective run sent with a task id of ours (run_flow_selective makes its own)",
    ),
]
