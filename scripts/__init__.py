"""Developer scripts; a package because `python -m scripts.alertmanager_profile` runs one and
tests import it (the demo's pieces live in devstack/, scripts/demo.py is its command line)."""
