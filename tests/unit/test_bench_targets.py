"""latest.json's targets: issue 16's goals, met or not at their edges, and never a guess."""

from __future__ import annotations

from typing import Any

from bench.report import targets


def _results(**over: Any) -> dict[str, Any]:
    results: dict[str, Any] = {
        "ratios": {"pipeline_over_temporal_floor": 1.2},
        "paced": {"latency_202_to_receiver_ms": {"p50": 50.0}, "offered_events_per_s": 4.0},
        "history": {"events_per_delivery": 8, "actions_per_delivery": None},
        "failure": {
            "retries": 2,
            "sampled": 3,
            "events_per_delivery": 20,
            "actions_per_delivery": 6,
        },
        "backlog": {
            "worker_rss_growth": 0.15,
            "deliveries_in_backoff": 20_000,
            "log_vs_raw": {
                "deliveries_stored": 19_999,
                "page_over_raw_list": 1.5,
                "page_over_sdk_list": 1.51,
                "latency_ms": {"page": {"p50": 30.0}, "raw_list": {"p50": 20.0}, "sdk_list": {"p50": 19.9}},
            },
        },
    }
    return results | over


def _met(results: dict[str, Any]) -> dict[str, Any]:
    return {t["target"]: t["met"] for t in targets(results)}


def test_each_goal_is_met_at_its_edge_or_missed_past_it() -> None:
    met = _met(_results())
    assert met["throughput / Temporal floor"] is True  # >= 1.2
    assert met["p50 202->receiver at half max (ms)"] is False  # < 50: 50 misses
    assert met["history events, first-attempt success"] is True  # <= 8
    assert met["Actions, failure after 2 retries"] is False  # <= N + 3 = 5
    assert met["worker RSS with backlog vs idle"] is True  # <= +15%
    assert met["first log page / raw visibility list"] is True  # <= 1.5
    assert met["first log page / SDK list_workflows"] is False  # 1.51 misses


def test_actions_not_measured_are_not_guessed() -> None:
    found = {t["target"]: t for t in targets(_results())}
    for name in ("Actions, first-attempt success", "Actions, first-attempt success, Fairness on"):
        assert (found[name]["measured"], found[name]["met"]) == (None, None)


def test_two_actions_meet_the_goal_but_not_with_fairness_billed() -> None:
    results = _results(history={"events_per_delivery": 8, "actions_per_delivery": 2})
    found = {t["target"]: t for t in targets(results)}
    assert found["Actions, first-attempt success"]["met"] is True
    fair = found["Actions, first-attempt success, Fairness on"]
    assert (fair["measured"], fair["met"]) == (2.2, False)
    assert found["Actions, failure after 2 retries, Fairness on"]["measured"] == 6.6  # 6 billed x 1.1


def test_a_store_smaller_than_asked_is_said_beside_the_log_figure() -> None:
    found = {t["target"]: t for t in targets(_results())}
    assert "fewer than the 20,000 asked" in found["first log page / raw visibility list"]["note"]
    assert "fewer than" not in found["worker RSS with backlog vs idle"]["note"]
