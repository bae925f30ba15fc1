"""Benchmark 5: a ``flow_scheduling`` job whose ``$filter`` matches N rows (10,000 by default) with the Selinon
flow backend, until every Selinon dispatcher message is on the Celery broker (the flow relay acknowledges a run
only once the broker confirmed it), against the neutral exchange's fan-out of the same run (the handler's own
time, confirmed) and a bare ``Dispatcher.apply_async`` loop with a window of confirms."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from kombu import Connection, Producer, Queue

from bench.driver import Driver, wait_ready
from bench.fanout import _wait_depth, _wait_event, executed_events, fan_out_job, fill
from bench.harness import (
    RABBITMQ_URL,
    Collector,
    Row,
    delete_exchanges,
    delete_queues,
    fresh_database,
    repeat,
    start_worker,
    unique_prefix,
    worker_env,
)

CONFIG = Path(__file__).parent / "selinon_config"
FLOW = "bayesianFlow"


class Confirms:
    """Publisher confirms counted on a channel (py-amqp's public API): wait until few are outstanding."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.channel = conn.channel()
        self.channel.confirm_select()
        self.published = self.confirmed = 0
        self.channel.events["basic_ack"].add(self._ack)

    def _ack(self, tag: int, multiple: bool) -> None:
        self.confirmed = max(self.confirmed, tag) if multiple else self.confirmed + 1

    def wait(self, down_to: int = 0) -> None:
        while self.published - self.confirmed > down_to:
            self.conn.drain_events(timeout=30)


def bare_dispatch(rows: int) -> float:
    """Seconds for Selinon's Dispatcher task, through Celery's ``apply_async`` as ``selinon.run_flow``
    calls it, to publish ``rows`` confirmed messages."""
    from celery import Celery
    from selinon import Config

    sys.path.insert(0, str(CONFIG))  # bench_pipeline, the tasks nodes.yml names
    Config.set_config_yaml(str(CONFIG / "nodes.yml"), [str(CONFIG / "flows.yml")])
    app = Celery("bench", set_as_current=False)
    Config.set_celery_app(app)
    dispatcher = app.tasks["selinon.Dispatcher"]
    queue = Config.dispatcher_queues[FLOW]
    with Connection(RABBITMQ_URL, heartbeat=0) as conn:
        confirms = Confirms(conn)
        producer = Producer(confirms.channel)
        node_args = {"ecosystem": "npm", "name": "package-1", "version": "1.0.1", "force": True}
        started = time.perf_counter()
        for index in range(rows):
            dispatcher.apply_async(
                kwargs={"flow_name": FLOW, "node_args": node_args},
                queue=queue,
                task_id=f"bare.{index}",
                producer=producer,
                retry=False,
            )
            confirms.published += 1
            if confirms.published - confirms.confirmed >= 500:
                confirms.wait(down_to=250)
        confirms.wait()
        return time.perf_counter() - started


def run(repetitions: int, scale: float, log_dir: Path) -> list[Row]:
    rows = max(1000, int(10_000 * scale))
    prefix = unique_prefix()
    os.environ["F8A_BENCH_QUEUE"] = prefix  # nodes.yml names the dispatcher queue after it
    dispatcher = f"{prefix}_dispatcher"
    commands, flows, events = f"{prefix}_commands", f"{prefix}_flows", f"{prefix}_events"
    with fresh_database() as database_url:
        fill(database_url, rows)
        env = worker_env(
            database_url,
            prefix,
            F8A_JOBS_FLOW_BACKEND="selinon",
            F8A_JOBS_SELINON_NODES=str(CONFIG / "nodes.yml"),
            F8A_JOBS_SELINON_FLOWS=str(CONFIG / "flows.yml"),
            F8A_BENCH_QUEUE=prefix,
        )
        worker = start_worker(env, log_dir)
        driver = Driver()
        conn = Connection(RABBITMQ_URL)
        channel = conn.channel()
        Queue(dispatcher, routing_key=dispatcher, durable=True)(channel).declare()
        executed = executed_events(channel, events, prefix)
        try:
            wait_ready(driver, commands)
            rep = 0

            def once(collected: Collector) -> None:
                nonlocal rep
                rep += 1
                channel.queue_purge(dispatcher)
                started = time.perf_counter()
                reply = driver.call(commands, fan_out_job(f"selinon-{rep}"))
                assert reply["ok"], reply
                _wait_depth(conn, dispatcher, rows, timeout=300)
                relayed = time.perf_counter() - started
                event = _wait_event(conn, executed, f"selinon-{rep}")
                if int(event["summary"]["dispatched"]) != rows:
                    raise RuntimeError(f"dispatched {event['summary']['dispatched']} of {rows}")
                channel.queue_purge(dispatcher)
                collected.add("selinon", rows / relayed)
                collected.add("neutral", rows / float(event["duration_s"]))
                collected.add("bare", rows / bare_dispatch(rows))
                channel.queue_purge(dispatcher)

            collected = repeat(repetitions, once)
            worker.check_alive()
        finally:
            driver.close()
            worker.stop()
            conn.release()
            delete_queues(
                commands,
                f"{prefix}_commands_dead",
                f"{flows}_relay",
                f"{flows}_dead",
                dispatcher,
            )
            delete_exchanges(events, flows)
    c = collected
    metric = f"{rows:,} flow runs to Selinon, all confirmed"
    return [
        Row("5 selinon", metric, "msg/s", c["selinon"], c["neutral"], "neutral fan-out"),
        Row(
            "5 selinon",
            metric,
            "msg/s",
            c["selinon"],
            c["bare"],
            "bare Dispatcher, confirms",
            goal=">= 0.5 x bare",
            goal_met=c["selinon"].median >= 0.5 * c["bare"].median,
        ),
    ]
