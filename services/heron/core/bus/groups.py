"""What a consumer group has left to do on a stream, read from Redis: for backpressure (ingest
waits for a group to catch up) and for knowing when a run is drained (`heron run` waits for
the overlay). Robust to what XINFO cannot tell: its `lag` is unknown after trims, deletes and
a Redis restarted from its append-only file, and then the entries after the group's
last-delivered id are counted instead."""

from __future__ import annotations

from typing import Any

import redis

from heron.core.bus import replies
from heron.core.bus.ids import parse_id
from heron.core.bus.replies import RawEntry


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


def unfinished_entries(client: redis.Redis, key: str, count_up_to: int) -> list[RawEntry]:
    """Entries of `key` some consumer group has not finished, oldest first, each once: given to
    it and not acknowledged (its pending list) or not given yet (after its last-delivered id).
    Before any group exists every entry counts: nobody has read them. Per group at most the
    `count_up_to` oldest pending and undelivered entries are looked at; a pending entry whose
    data was trimmed or deleted is not there to return. [] before the stream exists."""
    try:
        groups = client.xinfo_groups(key)
    except redis.ResponseError:  # no such key yet
        return []
    if not groups:
        return replies.entries(client.xrange(key, count=count_up_to), "XRANGE")
    found: dict[str, RawEntry] = {}
    for raw in groups:
        info = {text(k): v for k, v in raw.items()}
        name, last = text(info["name"]), text(info["last-delivered-id"])
        pending = client.xpending_range(key, name, min="-", max="+", count=count_up_to)
        pipe = client.pipeline(transaction=False)
        for row in pending:
            entry_id = text(row["message_id"])
            pipe.xrange(key, min=entry_id, max=entry_id)
        pipe.xrange(key, min=f"({last}", count=count_up_to)
        for reply in pipe.execute():
            for entry in replies.entries(reply, "XRANGE"):
                found.setdefault(entry.id, entry)
    return sorted(found.values(), key=lambda e: parse_id(e.id))


def unfinished_ids(
    client: redis.Redis, key: str, group: str, after: str, count_up_to: int
) -> list[str]:
    """Ids of `key`'s entries newer than `after` that `group` has not finished, oldest first:
    pending (given, not acknowledged) or after its last-delivered id. Before the group exists
    every entry counts. At most `count_up_to` of each kind. Read in two steps: an entry the
    group is given or acknowledges in between may count as unfinished, never the other way."""
    info = _group_info(client, key, group)
    if info is None:  # no group (or no stream: XRANGE finds nothing)
        rows = client.xrange(key, min=f"({after}", count=count_up_to)
        return [text(row[0]) for row in rows or []]
    last = text(info["last-delivered-id"])
    undelivered_after = max(after, last, key=parse_id)
    pipe = client.pipeline(transaction=True)
    pipe.xpending_range(key, group, min=f"({after}", max="+", count=count_up_to)
    pipe.xrange(key, min=f"({undelivered_after}", count=count_up_to)
    pending, undelivered = pipe.execute()
    found = {text(row["message_id"]) for row in pending}
    found.update(text(row[0]) for row in undelivered)
    return sorted(found, key=parse_id)


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
