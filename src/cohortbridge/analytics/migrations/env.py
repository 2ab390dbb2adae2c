from cohortbridge.analytics.tables import metadata
from cohortbridge.db.alembic_env import run_migrations

run_migrations(metadata)
