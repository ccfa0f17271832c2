"""Trust & safety above quality: detectors, the fraud model, scans, decisions, undoing damage, appeals.

It sits in a layer above labeling and quality (it re-queues items, recomputes labels, re-opens reviews),
while the rest of `sapien.moderation` (the audit log, signals, verdicts, user administration) stays low so
every area can write audit rows and read verdicts. `.importlinter` holds both places.
"""
