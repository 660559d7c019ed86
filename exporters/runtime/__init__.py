"""Runtime shared by every exporter: config, collectors, scheduling, HTTP."""
