"""ListMetrics, GetMetricStatistics and GetMetricData over the metric store, with CloudWatch's
rules: a metric is named by its namespace, name and exact set of dimensions; periods of 1, 5,
10 or 30 s (high resolution, the last hour) or multiples of 60 s; periods with no data are
left out; statistics SampleCount, Sum, Average, Minimum, Maximum and percentiles (pNN.NN)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
from typing import Any

import orjson

from lambdastack.observe.cloudwatch_metrics.aggregate import PERCENTILE, Aggregate
from lambdastack.observe.cloudwatch_metrics.errors import (
    InvalidNextToken,
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameter,
)
from lambdastack.observe.cloudwatch_metrics.store import Dimensions, MetricStore, Series

Params = dict[str, Any]
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 30)
MAX_STATISTICS_DATAPOINTS = 1440
MAX_DATA_DATAPOINTS = 100_800
LIST_PAGE = 500
RECENTLY_ACTIVE_S = 3 * 3600


def _seconds(value: Any, member: str) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidParameterValue(f"The parameter {member} must be a valid timestamp.")


def _dimensions(items: list[Params] | None) -> Dimensions:
    pairs = sorted((d["Name"], d["Value"]) for d in items or ())
    if len({name for name, _ in pairs}) != len(pairs):
        raise InvalidParameterValue("No metric may have duplicate dimension names.")
    return tuple(pairs)


def _token(document: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(document)).decode()


def _untoken(token: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidNextToken("The service couldn't process your request because the NextToken is invalid.")


class CloudWatchService:
    def __init__(self, store: MetricStore) -> None:
        self.store = store

    # ------------------------------------------------------------------ ListMetrics

    def list_metrics(self, account: str, region: str, params: Params) -> Params:
        self.store.flush()
        namespace, name = params.get("Namespace"), params.get("MetricName")
        filters = [(d["Name"], d.get("Value")) for d in params.get("Dimensions") or ()]
        active_since = time.time() - RECENTLY_ACTIVE_S if params.get("RecentlyActive") == "PT3H" else None
        found = sorted(
            (s for s in self.store.find(account, region)
             if (namespace is None or s.namespace == namespace) and (name is None or s.name == name)
             and (active_since is None or s.last_at >= active_since)
             and all(any(k == fk and (fv is None or v == fv) for k, v in s.dimensions) for fk, fv in filters)),
            key=lambda s: (s.namespace, s.name, s.dimensions))
        start = 0
        if params.get("NextToken"):
            position = _untoken(params["NextToken"])
            if not isinstance(position, dict) or not isinstance(position.get("o"), int):
                raise InvalidNextToken("The service couldn't process your request because the NextToken is invalid.")
            start = position["o"]
        page = found[start:start + LIST_PAGE]
        result: Params = {"Metrics": [{
            "Namespace": s.namespace, "MetricName": s.name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in s.dimensions]} for s in page]}
        if start + LIST_PAGE < len(found):
            result["NextToken"] = _token({"o": start + LIST_PAGE})
        return result

    # ------------------------------------------------------------------ GetMetricStatistics

    def get_metric_statistics(self, account: str, region: str, params: Params) -> Params:
        statistics: list[str] = params.get("Statistics") or []
        extended: list[str] = params.get("ExtendedStatistics") or []
        if not statistics and not extended:
            raise MissingParameter("Must specify either Statistics or ExtendedStatistics.")
        for stat in extended:
            if PERCENTILE.fullmatch(stat) is None:
                raise InvalidParameterValue(
                    f"The value {stat} for parameter ExtendedStatistics is not supported.")
        start = _seconds(params["StartTime"], "StartTime")
        end = _seconds(params["EndTime"], "EndTime")
        period = int(params["Period"])
        self._check_range(start, end, period)
        wanted = (end - start) / period
        if wanted > MAX_STATISTICS_DATAPOINTS:
            raise InvalidParameterCombination(
                f"You have requested up to {int(-(-wanted // 1)):,} datapoints, which exceeds the limit of "
                f"{MAX_STATISTICS_DATAPOINTS:,}. You may reduce the datapoints requested by increasing Period, "
                "or decreasing the time range.")
        self.store.flush()
        name = params["MetricName"]
        series = self.store.get(account, region, params["Namespace"], name, _dimensions(params.get("Dimensions")))
        unit = params.get("Unit")
        datapoints: list[Params] = []
        if series is not None and (unit is None or unit == series.unit):
            for at, agg in self._periods(series, start, end, period):
                point: Params = {"Timestamp": float(at), "Unit": series.unit}
                for stat in statistics:
                    value = agg.statistic(stat)
                    if value is not None:
                        point[stat] = value
                if extended:
                    point["ExtendedStatistics"] = {
                        stat: value for stat in extended if (value := agg.statistic(stat)) is not None}
                datapoints.append(point)
        return {"Label": name, "Datapoints": datapoints}

    # ------------------------------------------------------------------ GetMetricData

    def get_metric_data(self, account: str, region: str, params: Params) -> Params:
        queries: list[Params] = params["MetricDataQueries"]
        start = _seconds(params["StartTime"], "StartTime")
        end = _seconds(params["EndTime"], "EndTime")
        if start >= end:
            raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
        limit = int(params.get("MaxDatapoints") or MAX_DATA_DATAPOINTS)
        descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        ids = [q["Id"] for q in queries]
        if len(set(ids)) != len(ids):
            raise InvalidParameterValue("The values for parameter Id in MetricDataQueries must be unique.")
        plans = [self._plan(account, region, q, start, end) for q in queries]
        self.store.flush()
        series_points: list[tuple[Params, list[tuple[int, float]]]] = []
        for query, plan in zip(queries, plans, strict=True):
            if not query.get("ReturnData", True):
                continue
            series, period, stat, unit = plan
            values: list[tuple[int, float]] = []
            if series is not None and (unit is None or unit == series.unit):
                for at, agg in self._periods(series, start, end, period):
                    value = agg.statistic(stat)
                    if value is not None:
                        values.append((at, value))
            if descending:
                values.reverse()
            series_points.append((query, values))
        # A page holds at most `limit` datapoints in all; the token says where the next page starts.
        position = _untoken(params["NextToken"]) if params.get("NextToken") else {"q": 0, "o": 0}
        if not isinstance(position, dict) or not {"q", "o"} <= position.keys():
            raise InvalidNextToken("The service couldn't process your request because the NextToken is invalid.")
        room = limit
        results: list[Params] = []
        next_position: Params | None = None
        for index, (query, values) in enumerate(series_points):
            if index < position["q"]:
                continue
            offset = position["o"] if index == position["q"] else 0
            if room <= 0:
                next_position = next_position or {"q": index, "o": offset}
                break
            taken = values[offset:offset + room]
            room -= len(taken)
            complete = offset + len(taken) >= len(values)
            if not complete:
                next_position = {"q": index, "o": offset + len(taken)}
            results.append({
                "Id": query["Id"], "Label": query.get("Label") or query["MetricStat"]["Metric"]["MetricName"],
                "Timestamps": [float(at) for at, _ in taken], "Values": [v for _, v in taken],
                "StatusCode": "Complete" if complete else "PartialData", "Messages": [],
            })
            if not complete:
                break
        answer: Params = {"MetricDataResults": results, "Messages": []}
        if next_position is not None:
            answer["NextToken"] = _token(next_position)
        return answer

    def _plan(self, account: str, region: str, query: Params, start: float,
              end: float) -> tuple[Series | None, int, str, str | None]:
        if query.get("Expression") is not None:
            raise InvalidParameterValue(
                f"lambdastack does not evaluate metric math expressions (query {query['Id']}): use MetricStat.")
        stat_query = query.get("MetricStat")
        if stat_query is None:
            raise MissingParameter(f"The query {query['Id']} must have either MetricStat or Expression.")
        stat = stat_query["Stat"]
        if stat not in STATISTICS and PERCENTILE.fullmatch(stat) is None:
            raise InvalidParameterValue(f"The value {stat} for parameter MetricDataQueries.member.Stat is not "
                                        "supported.")
        period = int(stat_query["Period"])
        self._check_range(start, end, period)
        metric = stat_query["Metric"]
        if "Namespace" not in metric or "MetricName" not in metric:
            raise MissingParameter(f"The query {query['Id']} must name the metric's Namespace and MetricName.")
        series = self.store.get(account, region, metric["Namespace"], metric["MetricName"],
                                _dimensions(metric.get("Dimensions")))
        return series, period, stat, stat_query.get("Unit")

    def _check_range(self, start: float, end: float, period: int) -> None:
        if period <= 0 or (period not in HIGH_RESOLUTION_PERIODS and period % 60):
            raise InvalidParameterValue("The parameter Period must be 1, 5, 10, 30, or a multiple of 60.")
        if start >= end:
            raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")

    def _periods(self, series: Series, start: float, end: float, period: int) -> list[tuple[int, Aggregate]]:
        """The periods of [start, end) with data, oldest first: points merged into epoch-aligned periods."""
        resolution = 60 if period % 60 == 0 else 1
        buckets: dict[int, Aggregate] = {}
        for at, agg in self.store.points(series, resolution, start, end):
            moment = at // period * period
            found = buckets.get(moment)
            if found is None:
                buckets[moment] = agg
            else:
                found.merge(agg)
        return sorted(buckets.items())
