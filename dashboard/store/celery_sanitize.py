"""Validate and clamp every field of a Celery event before it reaches the store.

Anyone who can publish to a broker can forge events, so nothing in one is trusted: times are
kept to a sane range, numbers to their columns' range, text to its column's length, and
anything nested is flattened to bounded text. What had to change is said in the event's
`jobdash_note` (stored as the task's note), quoting the original value, so a clamp is visible.
"""
from __future__ import annotations

import secrets
import time
from typing import Any

# Celery events are stamped by the sender's clock; before 2000 or over a day ahead is forged.
EARLIEST = 946_684_800.0  # 2000-01-01T00:00:00Z
AHEAD = 86_400.0
NOTE = "jobdash_note"
# Marks an event already cleaned, with a value no sender can know: cleaning then costs nothing
# the second time (a batch retried one by one, the live rooms reading the same event).
CLEANED = "jobdash_cleaned"
_TOKEN = secrets.token_hex(16)

TEXT_MAX = 4 * 1024 * 1024  # args, kwargs, result, exception, traceback
QUOTE_MAX = 80  # how much of an out-of-range original the note quotes
# Fields stored in a String(n) column: their length.
SHORT = {"uuid": 64, "type": 32, "hostname": 255, "name": 255, "queue": 255, "exchange": 255, "routing_key": 255,
         "eta": 64, "expires": 64, "parent_id": 64, "root_id": 64, "sw_ident": 64, "sw_ver": 64, "sw_sys": 64}
LONG = ("args", "kwargs", "result", "exception", "traceback")
TIMES = ("timestamp", "local_received")
# Numbers: (lowest, highest, integer?). Integers fit a 32-bit column.
NUMBERS = {"retries": (0, 1_000_000, True), "active": (0, 1_000_000, True), "processed": (0, 2**31 - 1, True),
           "runtime": (0.0, 366 * 86_400.0, False), "freq": (0.0, 86_400.0, False),
           "clock": (0, 2**63 - 1, True), "pid": (0, 2**31 - 1, True), "utcoffset": (-24, 24, True)}
OTHER_MAX = 1024  # any other field: scalars only, text this long at most
NESTED_MAX = 64  # items of anything nested that is flattened to text


def _quote(value: Any) -> str:
    text = _flat(value, OTHER_MAX)
    return text if len(text) <= QUOTE_MAX else text[:QUOTE_MAX - 1] + "…"


def _flat(value: Any, limit: int) -> str:
    """Bounded text of any value, nested ones included, without recursion."""
    parts: list[str] = []
    stack: list[Any] = [value]
    size = 0
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, _Close):
            text = item.text
        elif isinstance(item, dict):
            pairs = list(item.items())[:NESTED_MAX]
            stack.append(_Close("}"))
            for j in range(len(pairs) - 1, -1, -1):  # pushed last to first, so popped in order
                stack += [pairs[j][1], _Close(f"{', ' if j else ''}{_scalar_text(pairs[j][0])}: ")]
            text = "{"
        elif isinstance(item, (list, tuple)):
            seq = list(item)[:NESTED_MAX]
            stack.append(_Close("]"))
            for j in range(len(seq) - 1, -1, -1):
                stack += [seq[j], *([_Close(", ")] if j else [])]
            text = "["
        else:
            text = _scalar_text(item)
        parts.append(text)
        size += len(text)
    return _cut("".join(parts), limit)


class _Close:
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:OTHER_MAX])
    if isinstance(value, (bool, int, float)) or value is None:
        return repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"{value:.3e}"
    return f"<{type(value).__name__}>"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    mark = f"…[cut by jobdash at {limit:,} of {len(text):,} characters]" if limit > 200 else "…"
    return text[:limit - len(mark)] + mark


def _other(value: Any) -> Any:
    """Any other field: text and finite numbers kept (bounded), anything nested or odd as bounded text."""
    if isinstance(value, str):
        return _text(_cut(value, OTHER_MAX))
    if type(value) is bool or (type(value) in (int, float) and -2**63 < value < 2**63):
        return value
    return _text(_flat(value, OTHER_MAX))


def _text(value: str) -> str:
    """Text any database takes: no NUL, no lone surrogates (both shown as escapes instead)."""
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _number(value: Any, low: float, high: float, integer: bool) -> float | int | None:
    # NaN fails every comparison and infinities the range; bool is not a number here.
    if (type(value) is float or type(value) is int) and low <= value <= high:
        return int(value) if integer else float(value)
    return None


# Field -> how it is checked, looked up once per field. A time's highest is a span after now.
_TEXT, _TIME, _NUMBER, _LOAD, _SKIP = "text", "time", "number", "load", "skip"
RULES: dict[str, tuple] = {**{k: (_TEXT, n) for k, n in SHORT.items()}, **{k: (_TEXT, TEXT_MAX) for k in LONG},
                           **{k: (_TIME, EARLIEST, AHEAD, False) for k in TIMES},
                           **{k: (_NUMBER, *r) for k, r in NUMBERS.items()},
                           "loadavg": (_LOAD,), NOTE: (_SKIP,), CLEANED: (_SKIP,)}
MAX_FIELDS = 256
# Values RULES keeps as they are, by type, for the shortcut most fields of most events take (ingest's
# hot path): text that fits its column, an integer in range, a float in range of a float column.
_FITS_TEXT = {k: rule[1] for k, rule in RULES.items() if rule[0] is _TEXT}
_FITS_INT = {k: (low, high) for k, (low, high, _) in NUMBERS.items()}
_FITS_FLOAT = {k: (low, high) for k, (low, high, integer) in NUMBERS.items() if not integer}


def clean_event(event: Any) -> dict[str, Any] | None:
    """The event with every field checked and clamped, in place; None when it is not a dict.

    An event without a usable type becomes type "" (ignored by the store). Honest events pass
    each check in a comparison or two and are not copied: this runs for every event ingested."""
    if not isinstance(event, dict):
        return None
    if event.get(CLEANED) == _TOKEN:
        return event
    now = time.time()
    notes: list[str] = []
    changes: dict[str, Any] = {}
    dropped: list[Any] = []
    for key in list(event)[MAX_FIELDS:] if len(event) > MAX_FIELDS else ():
        del event[key]
    for key, value in event.items():
        # The shortcut: a value the checks below would keep as it is.
        cls = type(value)
        if cls is str:
            if len(value) <= _FITS_TEXT.get(key, -1) and value.isascii() and "\x00" not in value:
                continue
        elif cls is int or cls is float:
            fits = (_FITS_INT if cls is int else _FITS_FLOAT).get(key)
            if fits is not None and fits[0] <= value <= fits[1]:
                continue
        elif value is None:
            continue
        rule = RULES.get(key)
        if rule is None:
            if not isinstance(key, str) or len(key) > 64:
                dropped.append(key)
            elif not (type(value) is str and len(value) <= OTHER_MAX and value.isascii() and "\x00" not in value
                      or type(value) is bool or type(value) in (int, float) and -2**63 < value < 2**63):
                changes[key] = _other(value)
            continue
        kind = rule[0]
        if kind is _TEXT:
            if type(value) is str and len(value) <= rule[1] and value.isascii() and "\x00" not in value:
                continue
            limit = rule[1]
            if type(value) is not str:
                notes.append(f"{key} was not text ({_quote(value)}); kept as text")
                changes[key] = _text(_flat(value, limit))
            elif len(value) > limit:
                notes.append(f"{key} was {len(value):,} characters; cut to {limit:,}")
                changes[key] = _text(_cut(value, limit))
            else:
                changes[key] = _text(value)
        elif kind is _NUMBER or kind is _TIME:
            _, low, high, integer = rule
            if kind is _TIME:
                high += now
            # NaN fails every comparison and infinities the range; bool is not a number here.
            if (type(value) is float or type(value) is int) and low <= value <= high:
                if integer and type(value) is float:
                    changes[key] = int(value)
                continue
            changes[key] = None
            notes.append(f"{key} {_quote(value)} is out of range" +
                         ("; dropped" if kind is _NUMBER else " (2000 to a day ahead); time received used"))
        elif kind is _LOAD:
            numbers = [_number(v, 0.0, 1e6, False) for v in value[:3]] if isinstance(value, (list, tuple)) else []
            if not numbers or None in numbers:
                changes[key] = None
                notes.append(f"{key} {_quote(value)} is not three numbers; dropped")
        else:  # a note or mark only jobdash may set
            dropped.append(key)
    for key in dropped:
        del event[key]
    event.update(changes)
    if type(event.get("type")) is not str:
        event["type"] = ""
    if event.get("timestamp") is None:
        # No trustworthy time: when it reached the collector, else now.
        event["timestamp"] = event.get("local_received") or now
    if notes:
        event[NOTE] = _cut("event " + event["type"] + ": " + "; ".join(notes), 2000)
    event[CLEANED] = _TOKEN
    return event
