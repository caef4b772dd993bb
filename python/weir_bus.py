#!/usr/bin/env python3
"""A reader of weir's bus in Python: no dependency beyond the standard library.

The layout (offsets, entry framing) is documented in `src/bus/layout.rs`; the protocol is the one
`weir_schedulers::queue::broadcast` implements: read `tail`, copy the entry, then check that the
writer's `tail_intent` has not gone past `cursor + capacity` (if it has, the copy may be torn: drop
it). Python's loads from an mmap happen in program order and x86 keeps loads in order, which is
what the Rust reader gets from its acquire fences: this reader is for x86-64 only (it refuses
other machines; a weakly ordered CPU needs the fences). This reader joins at the oldest record still in
the ring (a late starter still sees the symbol mappings), and resyncs to the newest when lapped.

    bus = Bus("/dev/shm/weir/NAME")
    for seq, lost, record in bus.records():   # record: bytes of one DBN v3 record
        ...

Run as a script, it prints one line per record and the loss statistics:
`python3 python/weir_bus.py NAME|PATH [--follow]`.
"""

import mmap
import os
import struct
import sys
import time

MAGIC = b"WEIRBUS\0"
LAYOUT_VERSION = 1
HEADER_LEN = 4096
STATE = {1: "live", 2: "ended", 3: "superseded"}
KIND_ENTRY, KIND_PADDING = 1, 2
TAIL_INTENT, TAIL, LATEST, FIRST_SEQ, CHECKPOINTS = 256, 264, 272, 280, 384


class NotABus(Exception):
    """The file is not a weir bus of this layout: names the field and offset."""


def resolve(name):
    if "/" in name:
        return name
    return os.path.join(os.environ.get("WEIR_BUS_DIR", "/dev/shm/weir"), name)


class Bus:
    def __init__(self, path):
        import platform
        if platform.machine() not in ("x86_64", "AMD64"):
            raise NotABus(f"{path}: this reader relies on x86-64's load ordering; {platform.machine()} needs fences")
        self.path = path
        with open(path, "rb") as f:
            self.map = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        head = self.map[:64]
        if len(head) < 64 or head[:8] != MAGIC:
            raise NotABus(f"{path}: magic (offset 0) is {head[:8]!r}, expected {MAGIC!r}")
        layout, dbn_version, header_len, capacity, epoch, pid = struct.unpack_from("<IIQQQI", head, 8)
        for field, offset, found, expected in (
            ("layout version", 8, layout, LAYOUT_VERSION),
            ("DBN version", 12, dbn_version, 3),
            ("header length", 16, header_len, HEADER_LEN),
        ):
            if found != expected:
                raise NotABus(f"{path}: {field} (offset {offset}) is {found}, expected {expected}")
        if capacity < 4096 or capacity & (capacity - 1) or len(self.map) < HEADER_LEN + capacity:
            raise NotABus(f"{path}: capacity (offset 24) is {capacity}, or the file is shorter than it")
        self.capacity, self.epoch, self.pid = capacity, epoch, pid
        self.words = memoryview(self.map).cast("Q")
        self.mask = capacity - 1
        self.received = self.lost = self.laps = self.overwritten = self.corrupt = 0
        self.expected = None
        self.cursor = self._join_oldest()

    def _u64(self, offset):
        # One aligned 8-byte load (a struct unpack may assemble it byte by byte: a torn counter).
        return self.words[offset // 8]

    def state(self):
        return STATE.get(struct.unpack_from("<I", self.map, 136)[0], "unknown")

    def heartbeat_ns(self):
        return self._u64(128)

    def _overrun(self, position):
        return self._u64(TAIL_INTENT) > position + self.capacity

    def _entry_at(self, position):
        """(seq, end) of the entry starting at position, if still there."""
        off = HEADER_LEN + (position & self.mask)
        length, kind, seq = struct.unpack_from("<IIQ", self.map, off)
        room = self.capacity - (position & self.mask)
        if self._overrun(position) or kind != KIND_ENTRY or 16 + length > room:
            return None
        return seq, position + ((16 + length + 7) & ~7)

    def _join_oldest(self):
        for _ in range(4):
            tail = self._u64(TAIL)
            if tail == 0:
                self.expected = self._u64(FIRST_SEQ)
                return 0
            floor = max(0, self._u64(TAIL_INTENT) - self.capacity)
            marks = [self._u64(CHECKPOINTS + 8 * i) for i in range(16)]
            marks = [p for p in marks if floor <= p < tail]
            if marks:
                found = self._entry_at(min(marks))
                if found:
                    self.expected = found[0]
                    return min(marks)
        return self._u64(TAIL)

    def poll(self):
        """(seq, lost, record bytes), or None when there is nothing new."""
        while True:
            if self.cursor >= self._u64(TAIL):
                return None
            if self._overrun(self.cursor):
                self.laps += 1
                self.cursor = self._u64(LATEST)
                continue
            position = self.cursor
            off = position & self.mask
            length, kind = struct.unpack_from("<II", self.map, HEADER_LEN + off)
            if kind == KIND_PADDING:
                position += self.capacity - off
                off = 0
                length, kind = struct.unpack_from("<II", self.map, HEADER_LEN)
            seq = self._u64(HEADER_LEN + off + 8)
            if kind != KIND_ENTRY or 16 + length > self.capacity - off:
                if self._overrun(self.cursor):
                    self.overwritten += 1
                    continue
                self.corrupt += 1
                self.cursor = self._u64(TAIL)
                return None
            record = self.map[HEADER_LEN + off + 16:HEADER_LEN + off + 16 + length]
            if self._overrun(position):
                self.overwritten += 1
                self.laps += 1
                self.cursor = self._u64(LATEST)
                continue
            self.cursor = position + ((16 + length + 7) & ~7)
            lost = seq - self.expected if self.expected is not None and seq > self.expected else 0
            self.expected = seq + 1
            self.lost += lost
            if length < 16 or record[0] * 4 != length:
                self.corrupt += 1
                self.lost += 1
                continue
            self.received += 1
            return seq, lost, record

    def records(self, follow=False, idle=0.5):
        """Every record until the producer ended (or, without `follow`, until caught up)."""
        quiet_since = time.monotonic()
        while True:
            got = self.poll()
            if got is not None:
                quiet_since = time.monotonic()
                yield got
                continue
            if not follow or self.state() != "live":
                return
            if time.monotonic() - quiet_since > idle:
                time.sleep(0.001)


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        bus = Bus(resolve(argv[1]))
    except (OSError, NotABus) as e:
        print(f"weir_bus: {e}", file=sys.stderr)
        return 2
    for seq, lost, record in bus.records(follow="--follow" in argv):
        rtype, publisher, instrument, ts_event = struct.unpack_from("<BHIQ", record, 1)
        print(f"{seq} rtype=0x{rtype:02x} publisher={publisher} instrument={instrument} ts_event={ts_event}"
              + (f" lost={lost}" if lost else ""))
    print(f"epoch {bus.epoch}: received {bus.received}, lost {bus.lost}, laps {bus.laps}, "
          f"overwritten {bus.overwritten}, corrupt {bus.corrupt}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
