"""What a retry re-sends: the call as Celery recorded it, or nothing when that record is unreliable."""
from __future__ import annotations

import pytest
from celery import Celery

from dashboard.actions.celery_tasks import original_call
from dashboard.actions.registry import Invalid


@pytest.fixture
def app():
    app = Celery("t", broker="memory://", set_as_current=False)  # no result backend: events are all there is
    yield app
    app.close()


def task(args: str, kwargs: str = "{}", truncated: bool = False) -> dict:
    return {"uuid": "u1", "args": args, "kwargs": kwargs, "args_truncated": truncated}


def test_plain_literals_come_back_as_the_call(app):
    assert original_call(app, task("[1, 'a', {'k': [2.5, None]}]", "{'user_id': 7}")) == (
        (1, "a", {"k": [2.5, None]}), {"user_id": 7}, "events")


@pytest.mark.parametrize("args, kwargs, why", [
    ("(b'fffe',)", "{}", "hold bytes"),                      # Celery's repr of b"\xff\xfe"
    ("(datetime.datetime(2026, 1, 1),)", "{}", "not plain Python literals"),
    ("(1,)", "{'when': Decimal('1.5')}", "not plain Python literals"),
    ("[1, 2]", "['not', 'a', 'dict']", "not plain Python literals"),
])
def test_unfaithful_records_are_refused(app, args, kwargs, why):
    with pytest.raises(Invalid, match=why) as refused:
        original_call(app, task(args, kwargs))
    assert refused.value.status == 409


def test_truncated_arguments_are_refused_without_a_backend_copy(app):
    with pytest.raises(Invalid, match="truncated by Celery"):
        original_call(app, task("('" + "a" * 1100 + "...',)", truncated=True))
