#!/usr/bin/env python3
"""Writes a large gzip pcap for end-to-end runs of `weir replay`: N copies of the real DEEP sample,
each copy under its own IEX session id (so nothing is a duplicate and every message is decoded).

usage: benches/make_big_capture.py OUT.pcap.gz [COPIES=640] [LEVEL=6]
640 copies = 0.99 GB uncompressed, 31 M messages.
"""
import gzip, os, struct, sys, zlib

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "tests", "data", "iex", "Sai271828-iex-parser", "test.pcap.gz")
out, copies = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 640
level = int(sys.argv[3]) if len(sys.argv) > 3 else 6
raw = gzip.decompress(open(src, "rb").read())
records = []
pos = 24
while pos + 16 <= len(raw):
    caplen = struct.unpack_from("<I", raw, pos + 8)[0]
    records.append(bytearray(raw[pos : pos + 16 + caplen]))
    pos += 16 + caplen
sends = [struct.unpack_from("<q", r, 16 + 42 + 32)[0] for r in records]
with gzip.open(out, "wb", compresslevel=level) as f:
    f.write(raw[:24])
    for copy in range(copies):
        chunk = bytearray()
        for r, send in zip(records, sends):
            struct.pack_into("<I", r, 16 + 42 + 8, 0x40000000 + copy)
            # Each session is sent a day after the previous one, as a real new session would be.
            struct.pack_into("<q", r, 16 + 42 + 32, send + copy * 86_400_000_000_000)
            chunk += r
        f.write(chunk)
print(out, os.path.getsize(out), "bytes compressed,", 24 + copies * (len(raw) - 24), "uncompressed")
