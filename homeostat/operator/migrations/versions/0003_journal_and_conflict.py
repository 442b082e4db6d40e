"""The journal and structured conflicts: a `conflict` column and an index on `outcome`.

Rows with outcome `pending` are the journal (written before a mutation is sent) and are
looked up at every start-up, hence the index. Conflicts were folded into the reason
(`<reason>; conflict: <conflict>`) before this revision: they are split back out, so old
and new rows read alike.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FOLDED = "; conflict: "


def upgrade() -> None:
    op.add_column("actions", sa.Column("conflict", sa.Text, nullable=True))
    op.create_index("ix_actions_outcome", "actions", ["outcome"])
    actions = sa.table(
        "actions", sa.column("id"), sa.column("outcome"), sa.column("reason"), sa.column("conflict")
    )
    connection = op.get_bind()
    folded = connection.execute(
        sa.select(actions.c.id, actions.c.reason)
        .where(actions.c.outcome == "conflict")
        .where(actions.c.reason.contains(FOLDED, autoescape=True))
    ).all()
    for row_id, text in folded:
        reason, _, conflict = text.rpartition(FOLDED)
        connection.execute(
            actions.update().where(actions.c.id == row_id).values(reason=reason, conflict=conflict)
        )


def downgrade() -> None:
    actions = sa.table("actions", sa.column("reason"), sa.column("conflict"))
    op.get_bind().execute(
        actions.update()
        .where(actions.c.conflict.is_not(None))
        .values(reason=actions.c.reason + FOLDED + actions.c.conflict)
    )
    op.drop_index("ix_actions_outcome", table_name="actions")
    op.drop_column("actions", "conflict")
