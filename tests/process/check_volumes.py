#!/usr/bin/env python3
"""Checks a node's volumes after an insert-mode rdf-load, with mdb_dump:
every transaction present has exactly K records, and every transaction in
the commit log is present. Exit 0 when both hold."""

import argparse
import sys

import rdftest


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", required=True, help="the node's data directory")
    ap.add_argument("--commit-log", help="file of committed transaction ids")
    ap.add_argument("--rows-per-txn", type=int, required=True)
    a = ap.parse_args()
    present, problems = rdftest.check_insert_transactions(a.data_dir, a.rows_per_txn)
    committed = rdftest.read_commit_log(a.commit_log) if a.commit_log else set()
    missing = committed - present
    for p in problems[:20]:
        print("problem:", p)
    if missing:
        print(f"problem: {len(missing)} committed transactions missing, e.g. {sorted(missing)[:10]}")
    print(f"check: {len(present)} transactions present, each whole: {not problems}; "
          f"{len(committed)} in the commit log, missing {len(missing)}")
    return 0 if not problems and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
