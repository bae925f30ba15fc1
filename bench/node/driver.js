// A second load driver for benchmark 1, independent of bench/driver.py: Node.js and amqplib instead of Python
// and kombu. It keeps IN_FLIGHT requests unanswered against QUEUE and prints one JSON line per run:
// {"count", "seconds", "rate", "p50", "p99", "failed", "first_failure"}.
//
//   node bench/node/driver.js AMQP_URL QUEUE COMMAND COUNT IN_FLIGHT TAG [REPLY_BYTES]
//
// COMMAND is job.get (of the job "bench-get") or job.create (paused daily noop jobs named TAG-n). With
// REPLY_BYTES the request carries the header x-bench-reply-bytes (for the echo server).
"use strict";

const amqp = require("amqplib");
const crypto = require("crypto");

function body(command, tag, n) {
  const args =
    command === "job.get"
      ? { job_id: "bench-get" }
      : { handler: "noop", job_id: `${tag}-${n}`, periodically: "1 day", state: "paused" };
  return { command, command_id: crypto.randomUUID(), args };
}

function percentile(values, pct) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((pct / 100) * sorted.length));
  return sorted[rank - 1];
}

async function main() {
  const [url, queue, command, countText, inFlightText, tag, replyBytes] = process.argv.slice(2);
  const count = Number(countText);
  const inFlight = Number(inFlightText);
  const connection = await amqp.connect(url);
  const channel = await connection.createChannel();
  await channel.assertQueue(queue, { durable: true });
  const replies = await channel.assertQueue("", { exclusive: true, autoDelete: true });
  const sentAt = new Map();
  const latencies = [];
  let failed = 0;
  let firstFailure = null;
  let sent = 0;
  const headers = replyBytes ? { "x-bench-reply-bytes": Number(replyBytes) } : {};
  const started = process.hrtime.bigint();
  const finished = new Promise((resolve) => {
    const send = () => {
      while (sent < count && sent - latencies.length < inFlight) {
        const request = body(command, tag, sent);
        sentAt.set(request.command_id, process.hrtime.bigint());
        channel.sendToQueue(queue, Buffer.from(JSON.stringify(request)), {
          replyTo: replies.queue,
          correlationId: request.command_id,
          messageId: request.command_id,
          contentType: "application/json",
          contentEncoding: "utf-8",
          persistent: true,
          headers,
        });
        sent += 1;
      }
    };
    channel.consume(
      replies.queue,
      (message) => {
        const at = sentAt.get(message.properties.correlationId);
        if (at === undefined) return;
        sentAt.delete(message.properties.correlationId);
        latencies.push(Number(process.hrtime.bigint() - at) / 1e6);
        if (!replyBytes) {
          const reply = JSON.parse(message.content.toString("utf-8"));
          if (!reply.ok) {
            failed += 1;
            firstFailure = firstFailure || reply;
          }
        }
        if (latencies.length === count) resolve();
        else send();
      },
      { noAck: true },
    ).then(send);
  });
  await finished;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(
    JSON.stringify({
      count,
      seconds,
      rate: count / seconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      failed,
      first_failure: firstFailure,
    }),
  );
  await connection.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
