"""Coils: the strip as a mill sees it. Records in coil coordinates, the defect database's
store, coil views (list/show/export/report), maps, and later periodic marks and grading."""
