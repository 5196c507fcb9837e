""" "Did you mean" presses: the answer a user chose among the bot's suggestions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "answer_choices",
        sa.Column("id", BigId, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exchange_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("answer_id", sa.String(32), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["exchange_id"],
            ["exchanges.id"],
            name=op.f("fk_answer_choices_exchange_id_exchanges"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_choices")),
        sa.UniqueConstraint("exchange_id", name=op.f("uq_answer_choices_exchange_id")),
    )
    op.create_index(op.f("ix_answer_choices_user_id"), "answer_choices", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_answer_choices_user_id"), table_name="answer_choices")
    op.drop_table("answer_choices")
