"""Imports every engage table so that ``metadata`` is complete (Alembic, schema tests)."""

from cohortbridge.engage.datapoints import models as _datapoints
from cohortbridge.engage.metadata import metadata
from cohortbridge.engage.users import models as _users
from cohortbridge.engage.workspaces import models as _workspaces

__all__ = ["_datapoints", "_users", "_workspaces", "metadata"]
