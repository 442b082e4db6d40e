"""SQLAlchemy table definitions of the history database (the migrations' target)."""

import sqlalchemy as sa

metadata = sa.MetaData()

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(512), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("before", sa.JSON, nullable=False),
    sa.Column("after", sa.JSON, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("revision", sa.String(128), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Index("ix_actions_time", "time"),
    sa.Index("ix_actions_kind_name", "kind", "name"),
    sa.Index("ix_actions_revision", "revision"),
)
