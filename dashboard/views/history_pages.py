"""The History page (managers and admins): the charts are drawn from /api/history by static/js/history.js."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from dashboard.auth.web import current_user, requires_role
from dashboard.views.history_api import DEFAULT_RANGE

history_pages = Blueprint("history_pages", __name__)

# The range picker; history_api.RANGES holds their lengths.
RANGE_LABELS = {"1h": "1 hour", "24h": "24 hours", "7d": "7 days", "30d": "30 days", "90d": "90 days"}


@history_pages.get("/history")
@requires_role("manager")
def history():
    settings = current_app.extensions["jobdash"].settings
    celery = [s.name for s in settings.sources if s.kind == "celery"]
    return render_template("history.html", page="history", title="History", ranges=RANGE_LABELS,
                           default_range=DEFAULT_RANGE, celery_sources=celery, user=current_user().name,
                           api=request.script_root + "/api/history")
