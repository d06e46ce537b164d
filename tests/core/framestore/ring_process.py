"""A ring writer or reader run as its own process by the cross-process tests.

python -m tests.core.framestore.ring_process write STREAM SLOTS WIDTH HEIGHT
    creates a ring, then obeys stdin: "put V" (a frame filled with V; prints the
    SharedMemorySlot as hex), "exit" (unlinks, closes, exits 0)
python -m tests.core.framestore.ring_process read SLOT_HEX...
    attaches, prints each frame's first byte (or "overwritten"), exits 0
"""

from __future__ import annotations

import sys

import numpy as np
from heron.core.framestore import FrameOverwrittenError, SharedMemoryRing, segment_name
from heron.v1.frame_pb2 import SharedMemorySlot


def write(stream: str, slots: int, width: int, height: int) -> None:
    ring = SharedMemoryRing.create(segment_name(stream), slots, width * height * 3)
    print(ring.name, flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "put":
            frame = np.full((height, width, 3), int(args[0]), np.uint8)
            print(ring.put(frame).SerializeToString().hex(), flush=True)
        elif command == "exit":
            break
    ring.unlink()
    ring.close()


def read(hex_slots: list[str]) -> None:
    rings: dict[str, SharedMemoryRing] = {}
    for text in hex_slots:
        slot = SharedMemorySlot.FromString(bytes.fromhex(text))
        ring = rings.get(slot.segment) or rings.setdefault(
            slot.segment, SharedMemoryRing.attach(slot.segment)
        )
        try:
            print(int(ring.get(slot, copy=True).flat[0]), flush=True)
        except FrameOverwrittenError:
            print("overwritten", flush=True)
    for ring in rings.values():
        ring.close()


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        read(sys.argv[2:])
