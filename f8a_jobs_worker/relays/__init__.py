"""Relays: what moves messages from one durable place to another, at least once: the outbox relay (the
outbox table to the broker) and the flow relay (neutral flow runs to the Celery broker)."""
