"""uninspected_spans.uid: a stable id per span (coil, surface, camera, start, reason), unique, so the
spool's replay and retried batches store a span once. Existing rows get the same uid the code gives
(steelscan.coils.records.span_uid, copied here as it was: a migration must not change when the code
does); a row that repeats an earlier one (the duplicates this fixes) keeps a null uid.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""
import hashlib
import json

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _span_uid(coil_id, surface, camera_id, start_m, reason) -> str:
    key = json.dumps([coil_id, surface, camera_id, round(float(start_m), 6), reason], separators=(",", ":"))
    return "span-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def upgrade() -> None:
    with op.batch_alter_table('uninspected_spans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uid', sa.String(), nullable=True))
    spans = sa.table('uninspected_spans', sa.column('id'), sa.column('coil_id'), sa.column('surface'),
                     sa.column('camera_id'), sa.column('start_m'), sa.column('reason'), sa.column('uid'))
    conn = op.get_bind()
    seen = set()
    rows = conn.execute(sa.select(spans.c.id, spans.c.coil_id, spans.c.surface, spans.c.camera_id, spans.c.start_m,
                                  spans.c.reason).order_by(spans.c.id)).all()
    updates = []
    for id_, *key in rows:
        uid = _span_uid(*key)
        if uid not in seen:
            seen.add(uid)
            updates.append({"b_id": id_, "b_uid": uid})
    if updates:
        conn.execute(spans.update().where(spans.c.id == sa.bindparam("b_id")).values(uid=sa.bindparam("b_uid")),
                     updates)
    with op.batch_alter_table('uninspected_spans', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_uninspected_spans_uid'), ['uid'])


def downgrade() -> None:
    with op.batch_alter_table('uninspected_spans', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_uninspected_spans_uid'), type_='unique')
        batch_op.drop_column('uid')
