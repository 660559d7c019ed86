"""Catalog -> mixin -> rule files, promtool tests and runbooks (`python -m alert_rules.generator`)."""
