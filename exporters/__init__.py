"""saasmon: async Prometheus exporters for SaaS/CRM products."""

__version__ = "0.2.0"
