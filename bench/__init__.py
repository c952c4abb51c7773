"""`make bench`: every hot path measured against its floor (issue 10). Run `python -m bench --help`.

Kept import-free: ``bench.floor_handler`` is the P1 floor and must load nothing else.
"""
