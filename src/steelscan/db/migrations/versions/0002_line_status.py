"""line_status: what each camera's line runner last published (position, frames/s, lag, behind).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('line_status',
    sa.Column('camera_id', sa.String(), nullable=False),
    sa.Column('coil_id', sa.String(), nullable=False),
    sa.Column('surface', sa.String(), nullable=False),
    sa.Column('position_m', sa.Float(), nullable=False),
    sa.Column('frames', sa.Integer(), nullable=False),
    sa.Column('frames_per_s', sa.Float(), nullable=True),
    sa.Column('lag_s', sa.Float(), nullable=True),
    sa.Column('behind_m', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('camera_id', name=op.f('pk_line_status'))
    )
    with op.batch_alter_table('line_status', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_line_status_coil_id'), ['coil_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('line_status', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_line_status_coil_id'))
    op.drop_table('line_status')
