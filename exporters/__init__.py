"""saasmon: async Prometheus exporters for SaaS/CRM products."""

__version__ = "0.1.0"
