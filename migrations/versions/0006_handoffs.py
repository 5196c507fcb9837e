"""Hand-off to people: questions passed to the support chat, and exchanges answered by a
person.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite too): a batch copy of `exchanges` would break the foreign
    # keys referring to it.
    op.add_column(
        "exchanges",
        sa.Column("answered_by_person", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "handoffs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exchange_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("language_code", sa.String(16), nullable=True),
        sa.Column("support_message_id", sa.BigInteger(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["exchange_id"],
            ["exchanges.id"],
            name=op.f("fk_handoffs_exchange_id_exchanges"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoffs")),
        sa.UniqueConstraint("exchange_id", name=op.f("uq_handoffs_exchange_id")),
    )
    op.create_index(op.f("ix_handoffs_user_id"), "handoffs", ["user_id"])
    op.create_index(op.f("ix_handoffs_support_message_id"), "handoffs", ["support_message_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_handoffs_support_message_id"), table_name="handoffs")
    op.drop_index(op.f("ix_handoffs_user_id"), table_name="handoffs")
    op.drop_table("handoffs")
    with op.batch_alter_table("exchanges") as batch:
        batch.drop_column("answered_by_person")
