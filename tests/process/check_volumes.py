#!/usr/bin/env python3
"""Checks nodes' volumes with mdb_dump (used by scripts/demo):

  --data-dir D --rows-per-txn K [--commit-log F | --committed-subset F]
      after an insert-mode rdf-load: every transaction present has exactly K
      records; with --commit-log every logged transaction must be present;
      with --committed-subset the logged ones that are absent are only
      counted (after a takeover: committed on the lost primary, never
      received).
  --compare PRIMARY BACKUP
      every protected file of every volume the backup holds is identical.
  --audit-end PRIMARY
      prints the last ASN of the primary's audit trail.
Exit 0 when the check holds."""

import argparse
import os
import sys

import rdftest


def check_transactions(a):
    present, problems = rdftest.check_insert_transactions(a.data_dir, a.rows_per_txn)
    log = a.commit_log or a.committed_subset
    committed = rdftest.read_commit_log(log) if log else set()
    missing = committed - present
    for p in problems[:20]:
        print("problem:", p)
    if missing and a.commit_log:
        print(f"problem: {len(missing)} committed transactions missing, e.g. {sorted(missing)[:10]}")
    print(f"check: {len(present)} transactions present, each whole: {not problems}; "
          f"{len(committed)} in the commit log, {len(committed) - len(missing)} of them present")
    return 0 if not problems and not (missing and a.commit_log) else 1


def compare(primary, backup):
    prim, back = rdftest.volume_dirs(primary), rdftest.volume_dirs(backup)
    bad = 0
    for vol in sorted(back):
        p, b = rdftest.user_files(prim[vol]), rdftest.user_files(back[vol])
        same = p == b
        bad += not same
        print(f"compare: {vol}: " + ", ".join(f"{f} {len(p.get(f, {}))} records"
                                              for f in sorted(set(p) | set(b)))
              + (" - identical" if same else " - DIFFERENT"))
    return 1 if bad or not back else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="the node's data directory")
    ap.add_argument("--commit-log", help="committed transaction ids that must be present")
    ap.add_argument("--committed-subset", help="committed transaction ids, counted only")
    ap.add_argument("--rows-per-txn", type=int)
    ap.add_argument("--compare", nargs=2, metavar=("PRIMARY", "BACKUP"))
    ap.add_argument("--audit-end", metavar="PRIMARY")
    a = ap.parse_args()
    if a.audit_end:
        recs = rdftest.read_trail(os.path.join(a.audit_end, "audit"), "MAT", backwards=True,
                                  limit=1)
        print(recs[0]["asn"] if recs else 0)
        return 0
    if a.compare:
        return compare(*a.compare)
    if not a.data_dir or not a.rows_per_txn:
        ap.error("--data-dir and --rows-per-txn are required for the transaction check")
    return check_transactions(a)


if __name__ == "__main__":
    sys.exit(main())
