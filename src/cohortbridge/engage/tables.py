"""Imports every engage table so that ``metadata`` is complete (Alembic, schema tests)."""

from cohortbridge.engage.cohorts import models as _cohorts
from cohortbridge.engage.datapoints import models as _datapoints
from cohortbridge.engage.metadata import metadata
from cohortbridge.engage.partners import models as _partners
from cohortbridge.engage.segments import models as _segments
from cohortbridge.engage.users import models as _users
from cohortbridge.engage.workspaces import models as _workspaces

__all__ = ["_cohorts", "_datapoints", "_partners", "_segments", "_users", "_workspaces", "metadata"]
