#!/usr/bin/env python3
"""Reads a DBN file written by `weir replay --out` with Databento's own Python package
(`databento-dbn` from PyPI) and checks it against weir's other outputs of the same capture:

- record counts by schema equal `--stats-json`'s `dbn_records`;
- the header names the dataset and maps every symbol to an instrument id;
- every trade record has the price (x 100,000) and size of the matching IEX trade message in
  `--emit jsonl` (TOPS/DEEP `T`, DEEP+ `L` and `T`, in order);
- every DEEP price-level update is one MBO record with the same price, size and side.

Usage: check_dbn.py OUT.dbn STATS.json MESSAGES.jsonl
"""

import json
import sys

import databento_dbn as dbn

SCHEMA_OF = {
    "MBOMsg": "mbo",
    "MBP1Msg": "mbp-1",
    "MBP10Msg": "mbp-10",
    "TradeMsg": "trades",
    "StatusMsg": "status",
    "InstrumentDefMsg": "definition",
    "ImbalanceMsg": "imbalance",
    "StatMsg": "statistics",
    "SymbolMappingMsg": "symbol_mapping",
    "SystemMsg": "system",
}


def fail(msg):
    print(f"check_dbn: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def main(dbn_path, stats_path, jsonl_path):
    decoder = dbn.DBNDecoder()
    with open(dbn_path, "rb") as f:
        decoder.write(f.read())
    records = decoder.decode()
    meta, records = records[0], records[1:]
    if not isinstance(meta, dbn.Metadata):
        fail("the first item is not the metadata header")
    stats = json.load(open(stats_path))
    messages = [json.loads(line) for line in open(jsonl_path)]

    counts = {}
    for r in records:
        name = SCHEMA_OF.get(type(r).__name__)
        if name is None:
            fail(f"unexpected record type {type(r).__name__}")
        counts[name] = counts.get(name, 0) + 1
    if counts != stats["dbn_records"]:
        fail(f"record counts {counts} != stats {stats['dbn_records']}")

    if meta.version != 3:
        fail(f"DBN version {meta.version}")
    if not meta.dataset.startswith("IEXG"):
        fail(f"dataset {meta.dataset}")
    # databento-dbn exposes the header's mappings as {raw_symbol: [{start_date, end_date, symbol}]}.
    mapped = {sym: int(iv[0]["symbol"]) for sym, iv in meta.mappings.items()}
    if sorted(mapped.values()) != list(range(1, stats["books"]["instruments"] + 1)):
        fail(f"{len(mapped)} symbols mapped in the header, {stats['books']['instruments']} instruments")
    in_stream = {str(r.stype_in_symbol): r.instrument_id for r in records if isinstance(r, dbn.SymbolMappingMsg)}
    if in_stream != mapped:
        fail("SymbolMapping records disagree with the header's mappings")

    trades = [r for r in records if isinstance(r, dbn.TradeMsg)]
    iex_trades = [m for m in messages if m["type"] in ("T", "L")]
    if len(trades) != len(iex_trades):
        fail(f"{len(trades)} trade records, {len(iex_trades)} IEX trade messages")
    for r, m in zip(trades, iex_trades):
        if r.price != m["price"] * 100_000 or r.size != m["size"]:
            fail(f"trade {r} does not match IEX message {m}")

    levels = [r for r in records if isinstance(r, dbn.MBOMsg) and r.flags & 0x10]
    plus = [m for m in messages if m["type"] in ("8", "5")]
    if len(levels) != len(plus):
        fail(f"{len(levels)} MBO level records, {len(plus)} price level updates")
    for r, m in zip(levels, plus):
        side = "B" if m["type"] == "8" else "A"
        if (r.price, r.size, str(r.side)) != (m["price"] * 100_000, m["size"], side):
            fail(f"level record {r} does not match IEX message {m}")

    print(
        f"check_dbn: ok: {len(records)} records ({meta.dataset}), {len(trades)} trades and "
        f"{len(levels)} level updates match weir's decoded messages"
    )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(*sys.argv[1:])
