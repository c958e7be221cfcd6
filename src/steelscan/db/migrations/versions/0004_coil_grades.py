"""coil_grades: stored gradings of coils with their reasons, cut list and rule file (history kept).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('coil_grades',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coil_id', sa.String(), nullable=False),
    sa.Column('decision', sa.String(), nullable=False),
    sa.Column('grade', sa.String(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('pieces', sa.JSON(), nullable=False),
    sa.Column('length_m', sa.Float(), nullable=False),
    sa.Column('length_source', sa.String(), nullable=False),
    sa.Column('prime_m', sa.Float(), nullable=False),
    sa.Column('n_defects', sa.Integer(), nullable=False),
    sa.Column('rule_set', sa.String(), nullable=False),
    sa.Column('rules_file', sa.Text(), nullable=True),
    sa.Column('rules_sha256', sa.String(), nullable=False),
    sa.Column('rules_text', sa.Text(), nullable=False),
    sa.Column('graded_by', sa.String(), nullable=False),
    sa.Column('graded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coil_id'], ['coils.coil_id'], name=op.f('fk_coil_grades_coil_id_coils'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coil_grades'))
    )
    with op.batch_alter_table('coil_grades', schema=None) as batch_op:
        batch_op.create_index('ix_coil_grades_coil_graded_at', ['coil_id', 'graded_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('coil_grades', schema=None) as batch_op:
        batch_op.drop_index('ix_coil_grades_coil_graded_at')
    op.drop_table('coil_grades')
