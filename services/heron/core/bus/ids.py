"""Stream entry ids (`ms-seq`), parsed and written the one way every transport and reader
uses: as (ms, seq) tuples they order as Redis orders ids."""

from __future__ import annotations

EntryId = tuple[int, int]  # (milliseconds, sequence)

MAX_SEQ = 2**64 - 1


def parse_id(entry_id: str) -> EntryId:
    """A stream entry id `ms-seq` (or `ms`) as (ms, seq); ValueError naming what came."""
    ms, sep, seq = entry_id.partition("-")
    if not ms.isdigit() or (sep and not seq.isdigit()) or int(ms) > MAX_SEQ:
        raise ValueError(
            f"expected a stream entry id MS-SEQ such as 1733590000000-0, got {entry_id!r}"
        )
    number = int(seq) if sep else 0
    if number > MAX_SEQ:
        raise ValueError(f"sequence of {entry_id!r} is out of range")
    return int(ms), number


def id_text(entry_id: EntryId) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def id_before(entry_id: str) -> str:
    """The id just before `entry_id`: a cursor there continues with `entry_id` itself."""
    ms, seq = parse_id(entry_id)
    if seq:
        return id_text((ms, seq - 1))
    return id_text((ms - 1, MAX_SEQ)) if ms else "0-0"
