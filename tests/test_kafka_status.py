"""The Kafka status evaluator and lag-in-seconds table, with crafted windows for every rule."""
from __future__ import annotations

import pytest

from collectors.kafka_status import (OffsetTimes, Sample, Verdict, burrow_word, group_status, partition_status,
                                     thresholds_for)

SIZE = 5


def window(offsets: list[int], ends: list[int], start: float = 1000.0, step: float = 5.0) -> list[Sample]:
    return [Sample(start + i * step, o, e, e - o) for i, (o, e) in enumerate(zip(offsets, ends))]


def status(offsets, ends, members=1, size=SIZE) -> Verdict:
    return partition_status(window(offsets, ends), size, members)


def test_no_samples_and_one_sample_are_ok_and_say_why():
    assert partition_status([], SIZE, 1).rule == "no-samples"
    one = status([5], [9])
    assert (one.status, one.rule) == ("OK", "incomplete")
    assert "1 of 5" in one.reason


def test_zero_lag_now_is_ok_whatever_came_before():
    verdict = status([5, 5, 5, 5, 9], [9, 9, 9, 9, 9], members=0)
    assert (verdict.status, verdict.rule) == ("OK", "caught-up")


def test_lag_zero_anywhere_in_the_window_is_ok_until_it_leaves_the_window():
    # Burrow's rule 1: a consumer that caught up within the window is not in error, even stopped.
    verdict = status([5] * SIZE, [5, 6, 7, 8, 9], members=0)
    assert (verdict.status, verdict.rule) == ("OK", "lag-zero-in-window")
    assert "lag was 0 20 s ago" in verdict.reason and "lag 4 now" in verdict.reason
    assert status([5, 3, 4, 5, 6], [5, 9, 10, 11, 12]).status == "OK"  # before REWIND too
    # One sample later the zero has left the window: the stop shows.
    assert status([5] * SIZE, [6, 7, 8, 9, 10], members=0).status == "STOP"


def test_offset_still_and_nobody_consuming_is_stop():
    verdict = status([5] * SIZE, [9, 10, 11, 12, 13], members=0)
    assert verdict.status == "STOP"
    assert "offset 5 unchanged for 20 s" in verdict.reason and "no member" in verdict.reason


def test_offset_still_with_members_unknown_is_stop():
    assert status([5] * SIZE, [9] * SIZE, members=None).status == "STOP"


def test_offset_still_while_members_are_active_is_stall():
    verdict = status([5] * SIZE, [9] * SIZE, members=2)
    assert verdict.status == "STALL"
    assert "2 member(s) active" in verdict.reason


def test_offset_still_but_window_incomplete_is_not_yet_judged():
    assert status([5] * 3, [9] * 3, members=0).rule == "incomplete"


def test_offsets_going_back_is_rewind_and_comes_before_stall_and_warn():
    verdict = status([5, 6, 2, 3, 4], [10, 11, 12, 13, 14])
    assert verdict.status == "REWIND"
    assert "from 6 to 2" in verdict.reason
    # REWIND is checked before STOP and STALL (Burrow's order); a rewound window has moved anyway.
    assert status([5, 6, 2, 3, 4], [10, 11, 12, 13, 14], members=0).status == "REWIND"


def test_rewind_shows_even_in_an_incomplete_window():
    assert status([9, 1], [10, 10]).status == "REWIND"


def test_lag_never_decreasing_while_offsets_move_is_warn():
    verdict = status([1, 2, 3, 4, 5], [10, 11, 12, 14, 16])
    assert (verdict.status, verdict.rule) == ("WARN", "lag-not-decreasing")
    assert "9→11" in verdict.reason


def test_lag_growing_with_a_dip_is_warn_where_burrow_says_ok():
    # Lag 9, 12, 11, 15, 18: it fell once, so Burrow's rule does not fire; the trend still grows.
    verdict = status([1, 2, 4, 5, 6], [10, 14, 15, 20, 24])
    assert (verdict.status, verdict.rule) == ("WARN", "lag-growing")
    assert "9→18" in verdict.reason


def test_lag_falling_is_ok():
    verdict = status([1, 5, 9, 12, 15], [20, 21, 22, 23, 24])
    assert (verdict.status, verdict.rule) == ("OK", "consuming")


def test_offsets_reset_to_latest_is_ok_at_once():
    assert status([1, 2, 3, 4, 30], [20, 22, 24, 26, 30]).status == "OK"


def test_group_takes_the_worst_partition_and_burrow_folds_it_to_err():
    verdicts = [Verdict("OK", "consuming", ""), Verdict("STALL", "stalled", "x"), Verdict("WARN", "lag-growing", "")]
    top = group_status(verdicts, 10, 2.0, {})
    assert top.status == "STALL"
    assert burrow_word(top.status) == "ERR"
    assert burrow_word("WARN") == "WARN" and burrow_word("OK") == "OK"


@pytest.mark.parametrize(("thresholds", "lag", "seconds", "expected", "rule"), [
    ({"lag_warn": 100}, 100, 1.0, "WARN", "lag_warn"),
    ({"lag_warn": 100}, 99, 1.0, "OK", "all-ok"),
    ({"lag_warn": 100, "lag_error": 500}, 600, 1.0, "ERR", "lag_error"),
    ({"lag_seconds_warn": 30}, 1, 31.0, "WARN", "lag_seconds_warn"),
    ({"lag_seconds_error": 60}, 1, 61.0, "ERR", "lag_seconds_error"),
    ({"lag_seconds_error": 60}, 1, None, "OK", "all-ok"),
])
def test_thresholds_raise_the_group_status(thresholds, lag, seconds, expected, rule):
    verdict = group_status([Verdict("OK", "consuming", "")], lag, seconds, thresholds)
    assert (verdict.status, verdict.rule) == (expected, rule)


def test_a_partition_state_outranks_a_threshold():
    verdict = group_status([Verdict("STOP", "stopped", "")], 10_000, 1.0, {"lag_error": 10})
    assert verdict.status == "STOP"


def test_no_partitions_is_ok():
    assert group_status([], 0, None, {}).rule == "no-partitions"


def test_group_thresholds_override_the_sources():
    options = {"lag_warn": 100, "lag_error": 1000, "group_thresholds": {"billing": {"lag_warn": 5}}}
    assert thresholds_for(options, "billing") == {"lag_warn": 5.0, "lag_error": 1000.0}
    assert thresholds_for(options, "search") == {"lag_warn": 100.0, "lag_error": 1000.0}
    assert thresholds_for({}, "x") == {}


def test_lag_seconds_interpolates_between_points():
    table = OffsetTimes()
    for i in range(11):  # 10 records a second, seen once a second
        table.add(i * 10, 100.0 + i)
    assert table.lag_seconds(100, 110.0) == (0.0, False)
    assert table.lag_seconds(55, 110.0) == (pytest.approx(4.5), False)
    assert table.lag_seconds(0, 110.0) == (pytest.approx(10.0), False)


def test_lag_seconds_extrapolates_before_the_table_and_says_so():
    table = OffsetTimes(size=3)
    for i in range(5):
        table.add(100 + i * 10, 200.0 + i)
    assert len(table.points) == 3  # 120@202, 130@203, 140@204
    seconds, extrapolated = table.lag_seconds(100, 204.0)
    assert extrapolated and seconds == pytest.approx(4.0)


def test_lag_seconds_with_one_point_is_at_least_its_age():
    table = OffsetTimes()
    table.add(50, 10.0)
    table.add(50, 20.0)  # no new records: the first sighting stays
    assert table.lag_seconds(40, 30.0) == (20.0, True)
    assert OffsetTimes().lag_seconds(1, 5.0) == (None, False)


def test_lag_seconds_table_restarts_when_the_log_shrinks():
    table = OffsetTimes()
    table.add(100, 1.0)
    table.add(5, 2.0)
    assert list(table.points) == [(5, 2.0)]


def test_a_small_level_lag_with_offsets_moving_is_ok_not_burrows_warn():
    verdict = status([1, 4, 7, 10, 13], [3, 6, 9, 12, 15])
    assert (verdict.status, verdict.rule) == ("OK", "consuming")


def test_a_bad_threshold_is_named():
    with pytest.raises(ValueError, match=r"group_thresholds.billing.lag_warn: expected a number of at least 0, got 'x'"):
        thresholds_for({"group_thresholds": {"billing": {"lag_warn": "x"}}}, "billing")
    with pytest.raises(ValueError, match=r"^lag_error: expected a number"):
        thresholds_for({"lag_error": -1}, "billing")
