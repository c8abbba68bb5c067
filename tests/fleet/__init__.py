"""Real multi-process topologies (Redis Cluster, Sentinel, PostgreSQL, gunicorn) for fleet tests."""
