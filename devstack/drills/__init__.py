"""End-to-end fault drills: real faults through real exporters, Prometheus and Alertmanager
to loopback stand-ins of the paging channels (devstack/drills/harness.py)."""
