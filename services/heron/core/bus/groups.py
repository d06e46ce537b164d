"""What a consumer group has left to do on a stream, read from Redis: for backpressure (ingest
waits for a group to catch up) and for knowing when a run is drained (`heron run` waits for
the overlay). Robust to what XINFO cannot tell: its `lag` is unknown after trims, deletes and
a Redis restarted from its append-only file, and then the entries after the group's
last-delivered id are counted instead."""

from __future__ import annotations

from typing import Any

import redis

from heron.core.bus.ids import parse_id


def group_outstanding(client: redis.Redis, key: str, group: str, count_up_to: int) -> int:
    """Entries `group` has not finished on `key`: undelivered plus pending. Before the group
    exists every entry counts. Where Redis cannot tell the lag (after trims or deletes), the
    entries after last-delivered are counted, at most `count_up_to`."""
    backlog = group_backlog(client, key, group, count_up_to)
    if backlog is None:
        return int(client.xlen(key))
    return sum(backlog)


def group_backlog(
    client: redis.Redis, key: str, group: str, count_up_to: int
) -> tuple[int, int] | None:
    """(lag, pending) of `group` on `key`: entries on the stream not yet delivered to it, and
    delivered but not acknowledged; None before the group exists. Redis's own `lag` is
    entries added minus entries read, so entries trimmed before the group read them (a
    drop-oldest frame stream) would count forever: when it is unknown or more than the stream
    holds, the entries after last-delivered are counted, at most `count_up_to`."""
    info = _group_info(client, key, group)
    if info is None:
        return None
    lag = info.get("lag")
    if lag is None or int(lag) > int(client.xlen(key)):
        last = text(info["last-delivered-id"])
        rest = client.xrange(key, min=f"({last}", count=count_up_to)
        lag = len(rest or [])
    return int(lag), int(info["pending"])


def groups_caught_up(client: redis.Redis, key: str) -> dict[str, bool]:
    """Every consumer group on `key` and whether it has been given every entry now on the
    stream and acknowledged them all ({} before the stream exists). Judged by ids, not by
    XINFO's `lag`, which is nil or too high after a deleted entry or a restart."""
    try:
        groups = client.xinfo_groups(key)
    except redis.ResponseError:  # no such key yet
        return {}
    newest = client.xrevrange(key, count=1)
    last = parse_id(text(newest[0][0])) if newest else None
    caught_up: dict[str, bool] = {}
    for raw in groups:
        info = {text(k): v for k, v in raw.items()}
        delivered = parse_id(text(info["last-delivered-id"]))
        idle = int(info["pending"]) == 0
        caught_up[text(info["name"])] = idle and (last is None or delivered >= last)
    return caught_up


def entries_added(client: redis.Redis, key: str) -> int:
    """Entries ever added to the stream (trimmed or deleted ones included); 0 before it exists."""
    try:
        info = client.xinfo_stream(key)
    except redis.ResponseError:  # no such key yet
        return 0
    info = {text(k): v for k, v in info.items()}
    return int(info.get("entries-added", info["length"]))  # Redis < 7: no trims assumed


def _group_info(client: redis.Redis, key: str, group: str) -> dict[str, Any] | None:
    try:
        groups = client.xinfo_groups(key)
    except redis.ResponseError:  # no such key yet
        return None
    for raw in groups:
        info = {text(k): v for k, v in raw.items()}
        if text(info["name"]) == group:
            return info
    return None


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
