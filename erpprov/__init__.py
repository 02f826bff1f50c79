"""erpprov: declarative provisioning of a team's PostgreSQL."""

__version__ = "0.1.0"
