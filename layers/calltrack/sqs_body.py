"""JSON as an SQS message body: SQS takes only #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
#x10000-#x10FFFF and refuses the whole request otherwise (InvalidMessageContents). JSON may escape
any character, so those SQS refuses are written as ``\\uXXXX`` (the same text once decoded); the
rest stays as it is (Japanese is not escaped: the message does not grow)."""

from __future__ import annotations

import json
import re
from typing import Any

_NOT_FOR_SQS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_json(value: Any, **dumps: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **dumps)`` that SQS accepts whatever the text holds
    (a visitor's U+FFFF in a UTM field, a caller name)."""
    text = json.dumps(value, ensure_ascii=False, **dumps)
    return _NOT_FOR_SQS.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
