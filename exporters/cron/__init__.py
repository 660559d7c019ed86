"""Cron exporter: job registry, cron_job_logs follower, heartbeat endpoints."""
