"""Imports every analytics table so that ``metadata`` is complete (Alembic, schema tests)."""

from cohortbridge.analytics.cohorts import models as _cohorts
from cohortbridge.analytics.computations import models as _computations
from cohortbridge.analytics.destinations import models as _destinations
from cohortbridge.analytics.identity import models as _identity
from cohortbridge.analytics.ingest import models as _ingest
from cohortbridge.analytics.metadata import metadata
from cohortbridge.analytics.projects import models as _projects
from cohortbridge.analytics.streams import models as _streams
from cohortbridge.analytics.traits import models as _traits

__all__ = [
    "_cohorts", "_computations", "_destinations", "_identity", "_ingest", "_projects", "_streams",
    "_traits", "metadata",
]  # fmt: skip
