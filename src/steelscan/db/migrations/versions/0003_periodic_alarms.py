"""periodic_alarms (+ periodic_alarm_coils): roll-mark alarms raised while a line runs, the coils
they are recorded on, acknowledgement and closing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('periodic_alarms',
    sa.Column('id', BigId, nullable=False),
    sa.Column('uid', sa.String(), nullable=False),
    sa.Column('line_id', sa.String(), nullable=False),
    sa.Column('surface', sa.String(), nullable=False),
    sa.Column('coil_id', sa.String(), nullable=False),
    sa.Column('roll', sa.String(), nullable=True),
    sa.Column('period_m', sa.Float(), nullable=False),
    sa.Column('implied_diameter_mm', sa.Float(), nullable=False),
    sa.Column('class_ids', sa.JSON(), nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('first_m', sa.Float(), nullable=False),
    sa.Column('raised_m', sa.Float(), nullable=False),
    sa.Column('across_mm', sa.Float(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('close_reason', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_periodic_alarms')),
    sa.UniqueConstraint('uid', name=op.f('uq_periodic_alarms_uid'))
    )
    with op.batch_alter_table('periodic_alarms', schema=None) as batch_op:
        batch_op.create_index('ix_periodic_alarms_line_surface', ['line_id', 'surface'], unique=False)
        batch_op.create_index(batch_op.f('ix_periodic_alarms_coil_id'), ['coil_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_periodic_alarms_raised_at'), ['raised_at'], unique=False)

    op.create_table('periodic_alarm_coils',
    sa.Column('alarm_id', BigId, nullable=False),
    sa.Column('coil_id', sa.String(), nullable=False),
    sa.Column('carried', sa.Boolean(), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['alarm_id'], ['periodic_alarms.id'],
                            name=op.f('fk_periodic_alarm_coils_alarm_id_periodic_alarms'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['coil_id'], ['coils.coil_id'],
                            name=op.f('fk_periodic_alarm_coils_coil_id_coils'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alarm_id', 'coil_id', name=op.f('pk_periodic_alarm_coils'))
    )
    with op.batch_alter_table('periodic_alarm_coils', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_periodic_alarm_coils_coil_id'), ['coil_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('periodic_alarm_coils', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_periodic_alarm_coils_coil_id'))
    op.drop_table('periodic_alarm_coils')
    with op.batch_alter_table('periodic_alarms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_periodic_alarms_raised_at'))
        batch_op.drop_index(batch_op.f('ix_periodic_alarms_coil_id'))
        batch_op.drop_index('ix_periodic_alarms_line_surface')
    op.drop_table('periodic_alarms')
