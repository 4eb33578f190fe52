"""The state names eagle3-patch reports, per class, file and install (also the --json values).

A module of its own so that commands which never classify an install (pins)
need not import the classifier.
"""

UNPATCHED = "unpatched"
PATCHED = "patched"
PATCHED_OLD = "patched-old"
NATIVE = "native"
DRIFTED = "drifted"
ABSENT = "absent"
UNSUPPORTED = "unsupported"
#: An unpatched install whose capture an overlay package (``eagle3-patch overlay``) enables.
OVERLAID = "overlaid"
