"""What operators read: JSON logs, Prometheus metrics, health and readiness over HTTP."""
