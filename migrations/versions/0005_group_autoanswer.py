"""Groups: /autoanswer, stored per chat.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite too): a batch copy of `chats` would break the foreign keys of
    # the exchanges referring to it.
    op.add_column(
        "chats", sa.Column("autoanswer", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("autoanswer")
