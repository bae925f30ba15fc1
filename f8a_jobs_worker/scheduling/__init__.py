"""The scheduling core: job model, triggers, the APScheduler runtime and the service facade."""
