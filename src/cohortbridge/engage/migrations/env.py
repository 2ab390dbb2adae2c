from cohortbridge.db.alembic_env import run_migrations
from cohortbridge.engage.tables import metadata

run_migrations(metadata)
