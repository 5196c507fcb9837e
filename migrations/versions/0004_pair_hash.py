"""Training pairs unique by a hash of (question, answer), not by the texts: PostgreSQL cannot
index entries over about 2.7 kB, so a long /teach, import or approval failed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

qa_pairs = sa.table(
    "qa_pairs",
    sa.column("id", sa.BigInteger),
    sa.column("question", sa.Text),
    sa.column("answer", sa.Text),
    sa.column("pair_hash", sa.String),
)


def pair_hash(question: str, answer: str) -> str:
    """As bot.storage.tables.pair_hash computes it for stored text, frozen with this revision."""
    return hashlib.sha256(f"{question}\x00{answer}".encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("qa_pairs") as batch:
        batch.add_column(sa.Column("pair_hash", sa.String(64), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(qa_pairs.c.id, qa_pairs.c.question, qa_pairs.c.answer))
    hashes = [{"row_id": id, "hash": pair_hash(q, a)} for id, q, a in rows]
    set_hash = (
        qa_pairs.update()
        .where(qa_pairs.c.id == sa.bindparam("row_id"))
        .values(pair_hash=sa.bindparam("hash"))
    )
    for start in range(0, len(hashes), 1000):
        connection.execute(set_hash, hashes[start : start + 1000])
    with op.batch_alter_table("qa_pairs") as batch:
        batch.alter_column("pair_hash", existing_type=sa.String(64), nullable=False)
        batch.drop_constraint("uq_qa_pairs_question_answer", type_="unique")
        batch.create_unique_constraint("uq_qa_pairs_pair_hash", ["pair_hash"])


def downgrade() -> None:
    with op.batch_alter_table("qa_pairs") as batch:
        batch.drop_constraint("uq_qa_pairs_pair_hash", type_="unique")
        batch.create_unique_constraint("uq_qa_pairs_question_answer", ["question", "answer"])
        batch.drop_column("pair_hash")
