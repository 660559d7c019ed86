"""PostgreSQL exporter."""
