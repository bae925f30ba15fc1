"""What operators look at: Prometheus metrics, liveness and readiness probes, and their HTTP server."""
