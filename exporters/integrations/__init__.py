"""Integrations exporter: third-party status probes, app health, delivery failures."""
