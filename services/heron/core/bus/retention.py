"""Per-kind retention: drop-oldest trimming for frames, keep-unread bounds for metadata.

Drop-oldest (frames): XADD, then XTRIM MAXLEN in one Lua script; XTRIM's count is the drops.
The same script counts, for each consumer group, the trimmed entries that group had not been
given yet (after its last-delivered id): the frames a slow group lost. Only the entries about
to go are looked at (the `excess` oldest: XTRIM, exact or `~`, never trims more), so the cost
is that of the trim, not of the stream's length.

Keep-unread (metadata, events): an entry may go only once every consumer group is done with
it, i.e. below the lowest of each group's oldest pending id (read, not acknowledged) or, for
a group with nothing pending, the entry after the last one it was given (later entries are
unread). One Lua script computes that floor from XINFO GROUPS and XPENDING, trims with
XTRIM MINID and appends what fits, so no group can read or join between the look and the trim.
A stream without groups keeps everything: nobody has read it yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from redis.typing import EncodableT

from heron.core.bus.codec import Entry
from heron.core.bus.errors import ReplyError
from heron.core.bus.replies import text

_LUA_FLOOR = """
local function id_before(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if tonumber(ams) ~= tonumber(bms) then return tonumber(ams) < tonumber(bms) end
  return tonumber(aseq) < tonumber(bseq)
end

-- The first id some group still needs; nil when the stream has no group.
local function needed_floor(key)
  local floor = nil
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local info = {}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    local need
    if tonumber(info['pending']) > 0 then
      need = redis.call('XPENDING', key, info['name'])[2]
    else
      local ms, seq = string.match(info['last-delivered-id'], '^(%d+)-(%d+)$')
      need = ms .. '-' .. (tonumber(seq) + 1)
    end
    if floor == nil or id_before(need, floor) then floor = need end
  end
  return floor
end

local function trim_acked(key)
  if redis.call('EXISTS', key) == 0 then return 0 end
  local floor = needed_floor(key)
  if floor == nil then return 0 end
  return redis.call('XTRIM', key, 'MINID', floor)
end
"""

# KEYS[1] stream; ARGV[1] max length; ARGV[2] words per entry; ARGV[3..] entries, flattened.
# Returns {trimmed, {ids}}: acknowledged entries trimmed to make room, ids of entries added
# (a prefix of the batch: as many as fit).
_LUA_APPEND = (
    _LUA_FLOOR
    + """
local key, max_len, width = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local total = (#ARGV - 2) / width
local len = redis.call('XLEN', key)
local trimmed = 0
if len + total > max_len then
  trimmed = trim_acked(key)
  len = len - trimmed
end
local ids = {}
for i = 0, math.min(total, max_len - len) - 1 do
  local first = 3 + i * width
  ids[#ids + 1] = redis.call('XADD', key, '*', unpack(ARGV, first, first + width - 1))
end
return {trimmed, ids}
"""
)

_LUA_TRIM = _LUA_FLOOR + "\nreturn trim_acked(KEYS[1])\n"

# KEYS[1] stream; ARGV[1] max length; ARGV[2] '~' or '='; ARGV[3] words per entry; ARGV[4..]
# entries, flattened. Returns {trimmed, {ids}, {group, unread trimmed, ...}}.
_LUA_DROP_OLDEST = (
    _LUA_FLOOR
    + """
local key, max_len, how, width = KEYS[1], tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local ids = {}
for first = 4, #ARGV, width do
  ids[#ids + 1] = redis.call('XADD', key, '*', unpack(ARGV, first, first + width - 1))
end
local excess = redis.call('XLEN', key) - max_len
if excess <= 0 then return {0, ids, {}} end
local groups = redis.call('XINFO', 'GROUPS', key)
local going = {}
if #groups > 0 then going = redis.call('XRANGE', key, '-', '+', 'COUNT', excess) end
local trimmed = redis.call('XTRIM', key, 'MAXLEN', how, max_len)
local unread = {}
for _, group in ipairs(groups) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local lost = 0
  -- `going` is in id order: the unread ones are its tail, after the last-delivered id.
  for i = trimmed, 1, -1 do
    if not id_before(info['last-delivered-id'], going[i][1]) then break end
    lost = lost + 1
  end
  if lost > 0 then
    unread[#unread + 1] = info['name']
    unread[#unread + 1] = lost
  end
end
return {trimmed, ids, unread}
"""
)


class DropOldestScript:
    """The drop-oldest append, registered on one client (reloaded if Redis restarts)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(_LUA_DROP_OLDEST)

    def append(
        self, key: str, entries: Sequence[Entry], max_len: int, approximate: bool
    ) -> tuple[list[str], int, dict[str, int]]:
        """Add `entries`, trim to `max_len`; return their ids, how many old entries went, and
        per consumer group how many of those it had not been given (only groups that lost
        some)."""
        if not entries:
            return [], 0, {}
        width = 2 * len(entries[0])
        if any(2 * len(e) != width for e in entries):
            raise ValueError("every entry of one append must have the same fields")
        words: list[EncodableT] = [w for fields in entries for pair in fields.items() for w in pair]
        args: list[EncodableT] = [max_len, "~" if approximate else "=", width, *words]
        reply = self._script(keys=[key], args=args, client=self._client)
        if not isinstance(reply, list) or len(reply) != 3 or not isinstance(reply[1], list):
            raise ReplyError(
                f"drop-oldest script: expected [trimmed, ids, unread], got {reply!r:.80}"
            )
        trimmed, ids, unread = reply
        lost = {text(unread[i], "XINFO"): int(unread[i + 1]) for i in range(0, len(unread), 2)}
        return [text(i, "XADD") for i in ids], int(trimmed), lost


class KeepUnreadScripts:
    """The keep-unread Lua scripts, registered on one client (reloaded if Redis restarts)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._append = client.register_script(_LUA_APPEND)
        self._trim = client.register_script(_LUA_TRIM)

    def append(self, key: str, entries: Sequence[Entry], max_len: int) -> tuple[list[str], int]:
        """Add as many of `entries` as fit under `max_len`; return their ids and the trim count."""
        if not entries:
            return [], 0
        width = 2 * len(entries[0])
        if any(2 * len(e) != width for e in entries):
            raise ValueError("every entry of one append must have the same fields")
        words = [w for fields in entries for pair in fields.items() for w in pair]
        reply = self._append(keys=[key], args=[max_len, width, *words], client=self._client)
        if not isinstance(reply, list) or len(reply) != 2 or not isinstance(reply[1], list):
            raise ReplyError(f"append script: expected [trimmed, ids], got {reply!r:.80}")
        trimmed, ids = reply
        return [text(i, "XADD") for i in ids], int(trimmed)

    def trim_acked(self, key: str) -> int:
        """Trim entries every consumer group has acknowledged; return how many went."""
        return int(self._trim(keys=[key], client=self._client))
