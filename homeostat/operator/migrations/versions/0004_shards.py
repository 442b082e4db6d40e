"""Shards: the `shard` of every history row and of each last-known-good slot.

Several `--selector` daemons share one history database. Each row carries the canonical
selector text of the daemon that wrote it, so a daemon starting up turns only its own
shard's `pending` rows into `interrupted` (another shard's are in flight), and each shard
keeps its own last-known-good slot. Rows written before this revision, and by a daemon
without a selector, have the empty shard: exactly what such a daemon reads back.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("actions", "last_known_good"):
        op.add_column(table, sa.Column("shard", sa.String(512), nullable=False, server_default=""))
    op.create_index("ix_actions_shard_outcome", "actions", ["shard", "outcome"])


def downgrade() -> None:
    op.drop_index("ix_actions_shard_outcome", table_name="actions")
    op.execute(sa.text("DELETE FROM last_known_good WHERE shard <> ''"))
    for table in ("actions", "last_known_good"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("shard")
