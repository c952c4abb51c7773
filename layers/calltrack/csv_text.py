"""CSV text for humans (Excel in Japan: UTF-8 with BOM, CRLF, formula cells escaped) and for Athena.

Every CSV calltrack writes (reports, calls, the QuickSight export) goes through ``write_csv``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

BOM = "\ufeff"
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def _cell(value: Any, *, excel: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        value = int(value)
    text = str(value)
    # Formula injection: a cell starting with = + - @ is a formula to Excel (the full-width forms a
    # Japanese IME types, ＝＋－＠, too: escaped alike, it costs nothing).
    if excel and text and text[0] in "=+-@\t\r\uff1d\uff0b\uff0d\uff20" and not _NUMBER.match(text):
        text = "'" + text
    return text


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], *, excel: bool = True) -> str:
    buf = io.StringIO()
    if excel:
        buf.write(BOM)
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v, excel=excel) for v in row])
    return buf.getvalue()
