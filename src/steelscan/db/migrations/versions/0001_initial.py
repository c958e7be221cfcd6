"""Coils, coil surfaces, defects, defect crops, uninspected spans, inspections.

Revision ID: 0001
Revises:
Create Date: 2026-12-02

A SQLite history written by steelscan before this schema (a raw `inspections` table, no
alembic_version) is adopted: its rows are copied into the new table, ids kept.
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    legacy = sa.inspect(op.get_bind()).has_table("inspections")
    if legacy:
        op.rename_table("inspections", "inspections_legacy")
    op.create_table('coils',
    sa.Column('coil_id', sa.String(), nullable=False),
    sa.Column('line_id', sa.String(), nullable=True),
    sa.Column('grade', sa.String(), nullable=True),
    sa.Column('width_mm', sa.Float(), nullable=True),
    sa.Column('thickness_mm', sa.Float(), nullable=True),
    sa.Column('length_m', sa.Float(), nullable=True),
    sa.Column('order_no', sa.String(), nullable=True),
    sa.Column('customer', sa.String(), nullable=True),
    sa.Column('exposed_surface', sa.String(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('coil_id', name=op.f('pk_coils'))
    )
    with op.batch_alter_table('coils', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_coils_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_coils_grade'), ['grade'], unique=False)
        batch_op.create_index(batch_op.f('ix_coils_line_id'), ['line_id'], unique=False)

    op.create_table('inspections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('filename', sa.Text(), nullable=False),
    sa.Column('verdict', sa.String(), nullable=True),
    sa.Column('n_defects', sa.Integer(), nullable=False),
    sa.Column('classes', sa.JSON(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inspections'))
    )
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inspections_created_at'), ['created_at'], unique=False)

    op.create_table('coil_surfaces',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coil_id', sa.String(), nullable=False),
    sa.Column('surface', sa.String(), nullable=False),
    sa.Column('camera_id', sa.String(), nullable=False),
    sa.Column('frames', sa.Integer(), nullable=False),
    sa.Column('inspected_m', sa.Float(), nullable=False),
    sa.Column('end_m', sa.Float(), nullable=False),
    sa.Column('strip_width_mm_min', sa.Float(), nullable=True),
    sa.Column('strip_width_mm_median', sa.Float(), nullable=True),
    sa.Column('strip_width_mm_max', sa.Float(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coil_id'], ['coils.coil_id'], name=op.f('fk_coil_surfaces_coil_id_coils'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_coil_surfaces')),
    sa.UniqueConstraint('coil_id', 'surface', 'camera_id', name=op.f('uq_coil_surfaces_coil_id'))
    )
    op.create_table('defects',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coil_id', sa.String(), nullable=False),
    sa.Column('surface', sa.String(), nullable=False),
    sa.Column('camera_id', sa.String(), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('class_name', sa.String(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('start_m', sa.Float(), nullable=False),
    sa.Column('end_m', sa.Float(), nullable=False),
    sa.Column('across_start_mm', sa.Float(), nullable=False),
    sa.Column('across_end_mm', sa.Float(), nullable=False),
    sa.Column('length_mm', sa.Float(), nullable=False),
    sa.Column('width_mm', sa.Float(), nullable=False),
    sa.Column('area_mm2', sa.Float(), nullable=False),
    sa.Column('frames', sa.JSON(), nullable=False),
    sa.Column('model_name', sa.String(), nullable=True),
    sa.Column('model_version', sa.String(), nullable=True),
    sa.Column('model_sha256', sa.String(), nullable=True),
    sa.Column('uid', sa.String(), nullable=True),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coil_id'], ['coils.coil_id'], name=op.f('fk_defects_coil_id_coils'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_defects')),
    sa.UniqueConstraint('uid', name=op.f('uq_defects_uid'))
    )
    with op.batch_alter_table('defects', schema=None) as batch_op:
        batch_op.create_index('ix_defects_coil_class', ['coil_id', 'class_id'], unique=False)
        batch_op.create_index('ix_defects_coil_surface_start', ['coil_id', 'surface', 'start_m'], unique=False)
        batch_op.create_index(batch_op.f('ix_defects_created_at'), ['created_at'], unique=False)

    op.create_table('uninspected_spans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('coil_id', sa.String(), nullable=False),
    sa.Column('surface', sa.String(), nullable=False),
    sa.Column('camera_id', sa.String(), nullable=False),
    sa.Column('start_m', sa.Float(), nullable=False),
    sa.Column('end_m', sa.Float(), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coil_id'], ['coils.coil_id'], name=op.f('fk_uninspected_spans_coil_id_coils'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uninspected_spans'))
    )
    with op.batch_alter_table('uninspected_spans', schema=None) as batch_op:
        batch_op.create_index('ix_uninspected_spans_coil_surface', ['coil_id', 'surface', 'start_m'], unique=False)

    if legacy:
        _adopt_legacy_inspections()
    op.create_table('defect_crops',
    sa.Column('defect_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('png', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['defect_id'], ['defects.id'], name=op.f('fk_defect_crops_defect_id_defects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('defect_id', name=op.f('pk_defect_crops'))
    )


def downgrade() -> None:
    op.drop_table('defect_crops')
    with op.batch_alter_table('uninspected_spans', schema=None) as batch_op:
        batch_op.drop_index('ix_uninspected_spans_coil_surface')

    op.drop_table('uninspected_spans')
    with op.batch_alter_table('defects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_defects_created_at'))
        batch_op.drop_index('ix_defects_coil_surface_start')
        batch_op.drop_index('ix_defects_coil_class')

    op.drop_table('defects')
    op.drop_table('coil_surfaces')
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inspections_created_at'))

    op.drop_table('inspections')
    with op.batch_alter_table('coils', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_coils_line_id'))
        batch_op.drop_index(batch_op.f('ix_coils_grade'))
        batch_op.drop_index(batch_op.f('ix_coils_created_at'))

    op.drop_table('coils')


def _adopt_legacy_inspections() -> None:
    # legacy created_at: ISO text "2026-01-02T03:04:05.678+00:00" (UTC); SQLAlchemy's SQLite
    # DateTime reads "2026-01-02 03:04:05.678000".
    op.execute("INSERT INTO inspections (id, created_at, filename, verdict, n_defects, classes, latency_ms, response)"
               " SELECT id, replace(substr(created_at, 1, 23), 'T', ' ') || '000', filename, verdict, n_defects,"
               " classes, latency_ms, response FROM inspections_legacy")
    op.drop_table("inspections_legacy")
