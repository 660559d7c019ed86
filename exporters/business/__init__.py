"""Business exporter: business, AI and support KPIs from a declarative SQL query pack."""
