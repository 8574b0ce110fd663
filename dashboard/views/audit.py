"""The audit page (admin only): filters and a CSV export; nothing here changes a row."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request

from dashboard.auth.web import requires_role
from dashboard.store.audit_log import AuditFilter, params_text, read_audit, row_key
from dashboard.views.pages import iso

audit_pages = Blueprint("audit", __name__)

PAGE_ROWS = 500
CSV_ROWS = 100_000
OUTCOMES = ("ok", "failed", "refused")
FILTER_KEYS = ("user", "action", "outcome", "since", "until")
CSV_COLUMNS = ("time", "user", "role", "via", "source", "action", "target", "params", "outcome", "error")
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
# Line feed and the full-width forms too: some spreadsheets fold those to the ASCII ones.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def _instant(text: str, end_of_day: bool) -> float:
    """Epoch seconds of a UTC date ("2026-01-31") or date and time ("2026-01-31T14:05")."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if end_of_day and "T" not in text:
        moment += timedelta(days=1)  # "until 2026-01-31" includes that whole day
    return moment.timestamp()


def _filters(args) -> tuple[AuditFilter, list[str]]:
    """The filter the query string asks for, and what in it could not be read."""
    problems: list[str] = []
    times: dict[str, float | None] = {"since": None, "until": None}
    for key in times:
        text = args.get(key, "").strip()
        if text:
            try:
                times[key] = _instant(text, end_of_day=key == "until")
            except (ValueError, OverflowError):
                problems.append(f"{key}: {text!r} is not a date like 2026-01-31 or 2026-01-31T14:05 (UTC)")
    outcome = args.get("outcome", "")
    if outcome and outcome not in OUTCOMES:
        problems.append(f"outcome: {outcome!r} is not one of {', '.join(OUTCOMES)}")
        outcome = ""
    where = AuditFilter(user=args.get("user", "").strip(), action=args.get("action", "").strip(), outcome=outcome,
                        since=times["since"], until=times["until"])
    return where, problems


# Parameters longer than this show their start and open in place to the whole text.
PARAMS_INLINE_MAX = 48


@audit_pages.get("/audit")
@requires_role("admin")
def audit():
    where, problems = _filters(request.args)
    rows = read_audit(current_app.extensions["jobdash"].engine, where, limit=PAGE_ROWS)
    for row in rows:
        row["params_text"] = params_text(row["params"])
    # Only the filters go on to the export link: other keys (endpoint=...) would clash with url_for's own.
    export_args = {k: v for k in FILTER_KEYS if (v := request.args.get(k))}
    return render_template("audit.html", page="audit", title="Audit", rows=rows, args=request.args, where=where,
                           row_key=row_key, export_args=export_args, params_inline_max=PARAMS_INLINE_MAX,
                           problems=problems, outcomes=OUTCOMES, page_rows=PAGE_ROWS)


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: formula-like starts get a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@audit_pages.get("/audit.csv")
@requires_role("admin")
def audit_csv():
    where, _ = _filters(request.args)
    rows = read_audit(current_app.extensions["jobdash"].engine, where, limit=CSV_ROWS)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = {**row, "time": iso(row["ts"]), "params": params_text(row["params"])}
        writer.writerow([csv_cell(values[c]) for c in CSV_COLUMNS])
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="jobdash-audit-{stamp}.csv"'})
