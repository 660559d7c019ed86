"""Redis exporter."""
