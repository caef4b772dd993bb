#!/usr/bin/env python3
"""Cross-language check of the bus: the records `weir replay FILE --bus NAME` published, read by
the Python reader (`python/weir_bus.py`, standard library only) and decoded by Databento's own
package, are the records `weir replay FILE --out OUT.dbn` wrote, byte for byte and in order.

Usage: check_bus.py BUS_PATH OUT.dbn   (the bus large enough to hold the whole capture)
"""

import os
import sys

import databento_dbn as dbn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import weir_bus  # noqa: E402

bus_path, dbn_path = sys.argv[1:3]
bus = weir_bus.Bus(bus_path)
assert bus.state() == "ended", bus.state()
from_bus = [(seq, lost, bytes(rec)) for seq, lost, rec in bus.records()]
assert bus.lost == 0 and bus.laps == 0 and bus.corrupt == 0, vars(bus)
assert [s for s, _, _ in from_bus] == list(range(len(from_bus))), "sequence numbers are 0, 1, 2, ..."

decoder = dbn.DBNDecoder()
with open(dbn_path, "rb") as f:
    decoder.write(f.read())
from_file = [bytes(r) for r in decoder.decode() if not isinstance(r, dbn.Metadata)]
assert len(from_bus) == len(from_file), (len(from_bus), len(from_file))
for i, ((_, _, a), b) in enumerate(zip(from_bus, from_file)):
    assert a == b, f"record {i} differs"

# The bus's bytes are DBN records Databento's decoder reads without a header.
raw = dbn.DBNDecoder(has_metadata=False)
raw.write(b"".join(r for _, _, r in from_bus))
decoded = raw.decode()
assert len(decoded) == len(from_bus), (len(decoded), len(from_bus))
kinds = sorted({type(r).__name__ for r in decoded})
print(f"bus ok: {len(from_bus)} records, epoch {bus.epoch}, identical to {dbn_path} ({', '.join(kinds)})")
