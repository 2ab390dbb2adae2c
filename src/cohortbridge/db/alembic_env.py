"""The body of both sides' Alembic ``env.py``: online migrations on a synchronous engine."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, create_engine, pool


def run_migrations(metadata: MetaData) -> None:
    config = context.config
    url = str(config.attributes.get("url") or config.get_main_option("sqlalchemy.url"))
    version_table = config.get_main_option("version_table") or "alembic_version"
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection, metadata, version_table)
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _run(conn, metadata, version_table)
    finally:
        engine.dispose()


def _run(connection: object, metadata: MetaData, version_table: str) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        version_table=version_table,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        include_name=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()


def _ours(name: str | None, type_: str, _parent: object) -> bool:
    """procrastinate's tables (PostgreSQL's job queue) are its own, not the models'."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))
