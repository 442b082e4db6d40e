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
    sa.Column("conflict", sa.Text, nullable=True),
    # The canonical `--selector` text of the daemon that wrote the row ("" without one): not a
    # record field but the writer's, stamped by the store (migration 0004).
    sa.Column("shard", sa.String(512), nullable=False, server_default=""),
    sa.Index("ix_actions_time", "time"),
    sa.Index("ix_actions_outcome", "outcome"),
    sa.Index("ix_actions_kind_name", "kind", "name"),
    sa.Index("ix_actions_revision", "revision"),
    sa.Index("ix_actions_shard_outcome", "shard", "outcome"),
)

# The last valid revision of the desired state (one row per shard; id 1 is the one of a daemon
# without a selector, `last_good.slot_id` the others'): what a daemon restarted while
# the directory is invalid keeps enforcing. `files` maps each manifest's path relative to the
# directory to its bytes, base64-encoded (portable across SQLite and PostgreSQL JSON).
last_known_good = sa.Table(
    "last_known_good",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.String(128), nullable=False),
    sa.Column("directory", sa.Text, nullable=False),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("files", sa.JSON, nullable=False),
    sa.Column("shard", sa.String(512), nullable=False, server_default=""),
)
