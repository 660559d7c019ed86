"""Instrumentation that applications drop into their own code (not an exporter process)."""
