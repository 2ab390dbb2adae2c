"""Imports every analytics table so that ``metadata`` is complete (Alembic, schema tests)."""

from cohortbridge.analytics.metadata import metadata

__all__ = ["metadata"]
