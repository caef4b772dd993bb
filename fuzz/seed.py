#!/usr/bin/env python3
"""Seeds the fuzz corpora from the real captures in tests/data/iex (run from anywhere).

capture/   small captures whole, and the first 8 KiB of the large ones (pcap and gzip)
segment/   every distinct UDP payload of the small captures, plus the raw segment dumps
message/   protocol byte + every distinct message body seen
sequencer/ a few headers-only inputs
normalize/ message-chunk streams per feed
dag_file/  edge lists (with and without costs, comments, CRLF), JSON graphs, cycles, near-misses
bus_file/  ring counters + data of a 4 KiB bus (the bytes from offset 256 of the file): wrapped, padded, torn
layout/    the example layout files and near-misses, CPU lists and masks
"""
import gzip, hashlib, os, struct, sys

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "tests", "data", "iex")
out = os.path.join(here, "corpus")
PROTO_BYTE = {0x8002: 0, 0x8003: 1, 0x8004: 2, 0x8005: 3}


def put(target, blob):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(blob).hexdigest()[:16]), "wb") as f:
        f.write(blob)


def udp_payloads(raw):
    """Classic pcap only (what the small captures are)."""
    if raw[:4] != b"\xd4\xc3\xb2\xa1":
        return
    pos = 24
    while pos + 16 <= len(raw):
        caplen = struct.unpack_from("<I", raw, pos + 8)[0]
        frame = raw[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        if len(frame) > 42 and frame[12:14] == b"\x08\x00":
            ihl = (frame[14] & 15) * 4
            yield frame[14 + ihl + 8 :]


def blocks(seg):
    proto, count = struct.unpack_from("<H", seg, 2)[0], struct.unpack_from("<H", seg, 14)[0]
    pos = 40
    for _ in range(count):
        if pos + 2 > len(seg):
            return
        n = struct.unpack_from("<H", seg, pos)[0]
        yield proto, seg[pos + 2 : pos + 2 + n]
        pos += 2 + n


for root, _, files in os.walk(data):
    for name in sorted(files):
        path = os.path.join(root, name)
        if name.endswith((".md", ".tsv.gz")):
            continue
        raw = open(path, "rb").read()
        if name.endswith(".dump") or name.endswith(".bin"):
            if raw[:1] == b"\x01" and len(raw) >= 40:
                put("segment", raw)
                for proto, body in blocks(raw):
                    put("message", bytes([PROTO_BYTE.get(proto, 4)]) + body)
            else:
                for p in (1, 2, 3):
                    put("message", bytes([p]) + raw)
            continue
        put("capture", raw if len(raw) <= 16384 else raw[:8192])
        plain = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        if raw[:2] == b"\x1f\x8b":
            put("capture", plain[:8192])
        if len(plain) <= 65536:
            for seg in udp_payloads(plain):
                put("segment", seg)
                for proto, body in blocks(seg):
                    put("message", bytes([PROTO_BYTE.get(proto, 4)]) + body)

# poll_loop/: four fault knobs, then length-prefixed frames: the first frames of each small capture.
def frames(raw):
    if raw[:4] != b"\xd4\xc3\xb2\xa1":
        return
    pos = 24
    while pos + 16 <= len(raw):
        caplen = struct.unpack_from("<I", raw, pos + 8)[0]
        yield raw[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen


for root, _, files in os.walk(data):
    for name in sorted(files):
        raw = open(os.path.join(root, name), "rb").read()
        plain = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        fs = list(frames(plain))[:200]
        if fs:
            put("poll_loop", bytes([0x05, 0x85, 0x03, 0x02]) + b"".join(struct.pack("<H", len(f)) + f for f in fs))
for spec in ["pcap:a.pcap,pace=x8", "udp:233.215.21.4:10378,iface=eth0", "dpdk:net_pcap0,rx_pcap=f,queue=1,group=233.1.2.3:9"]:
    put("nic_spec", spec.encode())

for i in range(4):
    put("sequencer", bytes(((j * 37 + i) % 256) for j in range(12 * (i + 3))))

# normalize/: one protocol byte, then 8-byte message chunks (kind, symbol, id, side, size, price,
# flags): an add / modify / execute / delete cycle per feed, and a pseudo-random mix.
cycle = [
    [0, 0, 1, 0, 100, 0, 5, 0x10], [0, 0, 2, 0, 100, 0, 5, 0x10], [4, 0, 1, 0, 50, 0, 5, 0x10],
    [2, 0, 1, 0, 50, 0, 5, 0x10], [3, 0, 2, 0, 0, 0, 0, 0x10], [6, 1, 0, 1, 100, 0, 7, 0x00],
    [6, 1, 0, 1, 0, 0, 7, 0x01], [8, 2, 0, 0, 10, 0, 3, 0x40], [5, 0, 0, 0, 0, 0, 0, 0x80],
    [9, 3, 0, 4, 100, 0, 2, 0x00],
]
for proto in range(3):
    put("normalize", bytes([proto]) + bytes(b for m in cycle for b in m))
    put("normalize", bytes([proto]) + bytes(((j * 131 + proto * 7) % 256) for j in range(8 * 40)))
# dag_file/: graph files as `weir dag gen` writes them and as people write them by hand; the target reads each
# input both as an edge list and as JSON.
def grid_edges(w, h):
    return [(v - w, v) for v in range(w * h) if v >= w] + [(v - 1, v) for v in range(w * h) if v % w]


def edge_list(n, edges, costs=None, comment="# weir DAG: `n m`, then `u v` per edge u -> v"):
    lines = [comment, f"{n} {len(edges)}"] + [f"{u} {v}" for u, v in edges]
    if costs is not None:
        lines += [str(c) for c in costs]
    return ("\n".join(lines) + "\n").encode()


put("dag_file", edge_list(5, [(i, i + 1) for i in range(4)]))
put("dag_file", edge_list(5, [(i, i + 1) for i in range(4)], [100, 200, 0, 5, 18446744073709551615]))
put("dag_file", edge_list(12, grid_edges(3, 4)))
put("dag_file", edge_list(7, [(v, (v - 1) // 2) for v in range(1, 7)], [250] * 7))
put("dag_file", edge_list(4, [], comment="% independent"))
put("dag_file", b"0 0\n")
# Repeated edges, inputs out of id order, CRLF, blank and indented comment lines, costs over several lines.
put("dag_file", b"% matrix-market style\r\n\n  # indented\n4 5\n2 3\n0 3\n1 3\n0 1\n0 1\n\n10 20\n30\r\n  40\n")
put("dag_file", edge_list(4, [(0, 1), (1, 2), (2, 3), (3, 1)]))  # a cycle
put("dag_file", b"2 1\n1 1\n")  # a self-loop
put("dag_file", b"3 2\n0 1\n1 7\n")  # an id out of range
put("dag_file", b"4 3\n0 1\n1 2\n")  # truncated
put("dag_file", b"3 1\n0 1\n5 6\n7 8\n")  # too many costs
put("dag_file", b"67108865 0\n")  # over the node limit
put("dag_file", b'{"nodes": [\n'
    b'{"name": "rate", "kind": "source", "inputs": [], "cost_ns": 0, "group": null, "pin": null},\n'
    b'{"name": "A0000/spot", "kind": "source", "inputs": [], "cost_ns": 0, "group": "A0000", "pin": null},\n'
    b'{"name": "A0000/p1", "kind": "price", "inputs": ["A0000/spot", "rate"], "cost_ns": 250, "group": "A0000", "pin": 3},\n'
    b'{"name": "total", "kind": "reduce", "inputs": ["A0000/p1", "A0000/p1"], "cost_ns": 7}\n'
    b']}\n')
put("dag_file", b'{"nodes": [{"name": "b", "inputs": ["a"]}, {"name": "a \\"q\\" \\u00e9", "pin": 0}]}')
put("dag_file", b'{"nodes": [{"name": "a", "inputs": ["b"]}, {"name": "b", "inputs": ["a"]}]}')  # a cycle
put("dag_file", b'{"nodes": [{"name": "a"}, {"name": "b", "cots_ns": 5}]}')  # unknown field
put("dag_file", b'{"nodes": [{"name": "a"}, {"name": "a"}]}')  # duplicate name
put("dag_file", b'{"nodes": [{"name": "a", "inputs": ["nope"]}]}')  # missing input
put("dag_file", b'{"nodes": []}')

# bus_file/: the target puts a valid header page in front; the input is the file from offset 256 (the ring
# counters at 256..512, zeros to 4096, then the 4096-byte data area), as weir::bus::layout describes.
def bus_ring(n_records, rec_len=48, capacity=4096, tear=None):
    data = bytearray(capacity)
    pos, seq, latest, checkpoints = 0, 0, 0, [0] * 16
    for _ in range(n_records):
        entry = (16 + rec_len + 7) // 8 * 8
        off = pos % capacity
        if capacity - off < entry:
            data[off:off + 8] = struct.pack("<II", capacity - off - 8, 2)
            pos += capacity - off
            off = 0
        rec = bytes([rec_len // 4, 0x00]) + bytes(i % 256 for i in range(2, rec_len))
        data[off:off + entry] = struct.pack("<IIQ", rec_len, 1, seq) + rec + bytes(entry - 16 - rec_len)
        checkpoints[(pos // (capacity // 16)) % 16] = pos
        latest, pos, seq = pos, pos + entry, seq + 1
    intent = pos if tear is None else pos + tear
    counters = bytearray(256)
    struct.pack_into("<QQQQ", counters, 0, intent, pos, latest, 0)
    struct.pack_into("<16Q", counters, 128, *checkpoints)
    return bytes(counters) + bytes(4096 - 512) + bytes(data)


put("bus_file", bus_ring(10))
put("bus_file", bus_ring(500))
put("bus_file", bus_ring(500, rec_len=80))
put("bus_file", bus_ring(300, rec_len=1020))
put("bus_file", bus_ring(200, tear=64))
put("bus_file", bus_ring(0))

# layout/: the example layouts, the 5.1 sketch's keys, CPU lists, and near-misses (typos, wrong types).
root = os.path.join(here, "..")
for name in sorted(os.listdir(os.path.join(root, "examples", "layouts"))):
    with open(os.path.join(root, "examples", "layouts", name), "rb") as f:
        text = f.read()
    put("layout", text)
    put("layout", text.replace(b"rx_queues", b"rx_queus").replace(b"cpu = 1", b"cpu = 47"))
put("layout", b"0-3,8,10-11:1/2")
put("layout", b"ff,00000003")
put("layout", b"[runtime]\nhugepages = { size = \"2M\", per_node = { 0 = 9999, 7 = 1 } }\n[[ring]]\nname = \"r\"\ncapacity = \"300MiB\"\n")
put("layout", b"[[core]]\ncpu = 4\nrole = \"rxx\"\nqueues = [0, 0, 9]\n[dag]\npartitions = { node7 = [1] }\n")

print({t: len(os.listdir(os.path.join(out, t))) for t in sorted(os.listdir(out))})
