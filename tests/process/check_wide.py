#!/usr/bin/env python3
"""Checks nodes' volumes against the commit log of `rdf-load --mode wide`
(tmf/wide_load.h describes the workload and the log).

  --commit-log F [F...] --node DATA_DIR [--node DATA_DIR] [--drained]
      every node given holds exactly what the log committed: each private
      key (file WIDE) the value of its last committed write (or, after a
      write whose outcome is unknown because its client was killed, either),
      byte for byte; each counter (file HOT) the number of committed
      increments (up to the unknown ones); no value of an aborted
      transaction; a transaction of unknown outcome whole or absent.
      With --drained and two nodes, every user file (the DDL files D0..D3
      too) is also identical on both.
  --commit-log F [F...] --node BACKUP_DATA_DIR --takeover
      after a takeover: the transactions whose COMMIT the backup received
      (its MIT) are committed, every other one absent, then as above.
Prints one JSON line {"violations": N, ...} and the first violations; exit
0 when there are none."""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdftest  # noqa: E402

OP = re.compile(r"^(\$[A-Za-z0-9]+)/([^/]+)/(.+?)(=(-|\d+)|\+1)$")


def wide_value(txid, key, length):
    unit = f"{txid}:{key};".encode()
    return (unit * (length // len(unit) + 1))[:length]


class Log:
    """The transactions of one or more commit logs. A transaction id whose
    records never became durable (its application was killed before) is
    given out again after recovery, so each U line starts a transaction of
    its own, and C or A ends the newest one with that id. Transactions are
    numbered by their U line (self.ids maps that number to the txid)."""

    def __init__(self, paths):
        self.ops = {}        # n -> [(vol, file, key, ("w", len) | ("d",) | ("inc",))]
        self.status = {}     # n -> "C" | "A" | "U"
        self.order = []      # n in the order of the U lines
        self.ids = {}        # n -> txid
        newest = {}          # txid -> n of its newest U line
        for path in paths:
            with open(path, errors="replace") as f:
                text = f.read()
            for line in text.split("\n")[:-1]:  # a cut last line does not count
                parts = line.split(" ")
                if parts[0] == "U" and len(parts) >= 2:
                    txid = int(parts[1])
                    ops = []
                    for op in parts[2:]:
                        m = OP.match(op)
                        if not m:
                            continue
                        vol, file, key = m.group(1), m.group(2), m.group(3)
                        if m.group(4) == "+1":
                            ops.append((vol, file, key, ("inc",)))
                        elif m.group(5) == "-":
                            ops.append((vol, file, key, ("d",)))
                        else:
                            ops.append((vol, file, key, ("w", int(m.group(5)))))
                    n = len(self.order)
                    self.ops[n] = ops
                    self.status[n] = "U"
                    self.ids[n] = txid
                    self.order.append(n)
                    newest[txid] = n
                elif parts[0] in ("C", "A") and len(parts) == 2:
                    n = newest.get(int(parts[1]))
                    if n is not None:
                        self.status[n] = parts[0]


def expected_state(log, committed):
    """{(vol, file, key): acceptable values} for WIDE keys (a set of bytes or
    None for absent) and {(vol, key): (low, high)} for HOT counters.
    `committed(txid)` -> True, False or None (unknown)."""
    wide, hot = {}, {}
    for n in log.order:
        c = committed(n)
        if c is False:
            continue
        txid = log.ids[n]
        for vol, file, key, op in log.ops[n]:
            if file == "HOT":
                lo, hi = hot.get((vol, key), (0, 0))
                hot[(vol, key)] = (lo + (1 if c else 0), hi + 1)
                continue
            if file != "WIDE":
                continue  # DDL files: compared node against node only
            value = None if op[0] == "d" else wide_value(txid, key, op[1])
            k = (vol, file, key)
            if c:
                wide[k] = {value}
            else:
                wide.setdefault(k, {None}).add(value)
    return wide, hot


def check_node(data_dir, log, committed, limit, out):
    wide, hot = expected_state(log, committed)
    vols = rdftest.volume_dirs(data_dir)
    actual_wide, actual_hot = {}, {}
    for vol, path in vols.items():
        dbs = rdftest.list_dbs(path)
        if "WIDE" in dbs:
            for k, v in rdftest.dump(path, "WIDE").items():
                actual_wide[(vol, "WIDE", k.decode("latin-1"))] = v
        if "HOT" in dbs:
            for k, v in rdftest.dump(path, "HOT").items():
                actual_hot[(vol, k.decode("latin-1"))] = int(v)
    bad = []
    for k in set(wide) | set(actual_wide):
        if k not in wide:
            if re.match(r"^\d+\.", k[2]) and any(k[2].startswith(p) for p in log.prefixes):
                bad.append(f"{data_dir}: {k} = {actual_wide[k][:40]!r} was never committed")
            continue
        got = actual_wide.get(k)
        if got not in wide[k]:
            want = [None if w is None else w[:40] for w in wide[k]]
            bad.append(f"{data_dir}: {k} = {None if got is None else got[:40]!r}, "
                       f"expected one of {want}")
    for k, (lo, hi) in hot.items():
        got = actual_hot.get(k, 0)
        if not lo <= got <= hi:
            bad.append(f"{data_dir}: counter {k} = {got}, expected {lo}..{hi}")
    # A transaction of unknown outcome is whole or absent where it is still
    # the last writer of its keys.
    for n in log.order:
        if committed(n) is not None:
            continue
        txid = log.ids[n]
        seen = set()
        for vol, file, key, op in log.ops.get(n, []):
            if file != "WIDE" or op[0] != "w":
                continue
            v = actual_wide.get((vol, file, key))
            if v is not None and len(v) > 0 and v.startswith(f"{txid}:".encode()):
                seen.add(True)
            elif wide.get((vol, file, key), set()) == {None, wide_value(txid, key, op[1])}:
                seen.add(False)
        if len(seen) > 1:
            bad.append(f"{data_dir}: transaction {txid} (outcome unknown) is partly present")
    out["keys_checked"] = out.get("keys_checked", 0) + len(wide) + len(hot)
    return bad


def received_commits(backup_dir):
    txids = set()
    for r in rdftest.image_records(backup_dir, "MIT"):
        if r.get("type") == "COMMIT":
            txids.add(int(r.get("txid", 0)))
    return txids


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commit-log", nargs="+", required=True)
    ap.add_argument("--node", action="append", required=True, help="a node's data directory")
    ap.add_argument("--drained", action="store_true")
    ap.add_argument("--takeover", action="store_true")
    ap.add_argument("--show", type=int, default=20)
    a = ap.parse_args()
    log = Log(a.commit_log)
    log.prefixes = {f"{op[2].split(':')[0]}:" for ops in log.ops.values() for op in ops
                    if op[1] == "WIDE"}
    out = {"transactions": len(log.ops),
           "committed": sum(1 for s in log.status.values() if s == "C"),
           "aborted": sum(1 for s in log.status.values() if s == "A"),
           "unknown": sum(1 for s in log.status.values() if s == "U")}
    if a.takeover:
        # A reused id: only its newest U line can be the one the backup
        # received (the older one's records never became durable).
        received = received_commits(a.node[0])
        newest = {}
        for n in log.order:
            newest[log.ids[n]] = n
        out["received"] = len(received & set(log.ids.values()))

        def committed(n):
            return log.ids[n] in received and newest[log.ids[n]] == n
    else:
        def committed(n):
            s = log.status.get(n)
            return True if s == "C" else False if s == "A" else None
    bad = []
    for node in a.node:
        bad += check_node(node, log, committed, a.show, out)
    if a.drained and len(a.node) == 2:
        p, b = rdftest.volume_dirs(a.node[0]), rdftest.volume_dirs(a.node[1])
        for vol in sorted(set(p) | set(b)):
            pf = rdftest.user_files(p[vol]) if vol in p else {}
            bf = rdftest.user_files(b[vol]) if vol in b else {}
            for f in sorted(set(pf) | set(bf)):
                if f not in pf or f not in bf:
                    bad.append(f"{vol}/{f} exists on one node only")
                elif pf[f] != bf[f]:
                    diff = sum(1 for k in set(pf[f]) | set(bf[f]) if pf[f].get(k) != bf[f].get(k))
                    bad.append(f"{vol}/{f} differs between the nodes in {diff} records")
    out["violations"] = len(bad)
    print(json.dumps(out))
    for b in bad[:a.show]:
        print("violation:", b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
