#!/usr/bin/env python3
"""Shipping benchmark (extractor -> receiver on loopback). Prints one JSON line.

Phase 1 (throughput): rdf-load pre-writes an audit trail of N DATA records
(100-byte values, 4 volumes, 5 records per transaction) with nothing
shipping; then the receiver and extractor start and the time until the
receiver's save point reaches the audit end gives records/s into durable
image trails. RssAnon (/proc/PID/status) of both processes is sampled
throughout; the peak is reported.

Phase 2 (latency): a fresh system with both processes running; rdf-load
offers R records/s from 8 clients. For every COMMIT in the master image
trail, latency = time of the first save point after it minus the COMMIT's
time (both on this machine's clock); p50/p99/max are reported.

  bench/ship_bench.py [--records 2000000] [--rate 50000] [--seconds 20]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "process"))
import rdftest  # noqa: E402


def rss_anon_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


EXTRA = {}


def add_settings(pairs):
    """Adds --set BLOCK.FIELD=VALUE pairs to the configuration every run uses."""
    for kv in pairs:
        k, v = kv.split("=", 1)
        EXTRA[k] = v


def system():
    settings = {"trail.audit_segment_bytes": 64 << 20, "trail.image_segment_bytes": 64 << 20,
                "tmf.retain_count": 100000}
    settings.update(EXTRA)
    work, cfg = rdftest.fresh_system(settings, prefix="rdf-bench.")
    rdftest.write_test_keys(work)
    return work, cfg


def start(work, cfg, name):
    return rdftest.Process([rdftest.binary(name), "--config", cfg],
                           log_path=os.path.join(work, name + ".log"))


def throughput(records):
    work, cfg = system()
    try:
        txns = records // 5
        t0 = time.time()
        load = rdftest.Process([rdftest.binary("rdf-load"), "--config", cfg, "--txns", str(txns),
                                "--clients", "8", "--quiet"], log_path=os.path.join(work, "load.log"))
        load.wait(3600)
        print(f"ship_bench: pre-wrote {records} records in {time.time() - t0:.1f} s",
              file=sys.stderr)
        end = rdftest.read_trail(os.path.join(work, "primary", "audit"), "MAT",
                                 backwards=True, limit=1)[0]["asn"]
        rx = start(work, cfg, "rdf-receiver")
        ex = start(work, cfg, "rdf-extractor")
        t0 = time.time()
        peak = {"receiver": 0, "extractor": 0}
        while True:
            peak["receiver"] = max(peak["receiver"], rss_anon_kb(rx.pid))
            peak["extractor"] = max(peak["extractor"], rss_anon_kb(ex.pid))
            st = rdftest.status(os.path.join(work, "backup"), "receiver") or {}
            if st.get("save_point_asn", 0) >= end:
                break
            if time.time() - t0 > 600:
                raise RuntimeError("shipping did not finish in 600 s")
            time.sleep(0.05)
        ex.stop()
        rx.stop()
        # The end is when the save point covering the audit end was taken
        # (its time in the MIT), not when its status was next published.
        mit = rdftest.read_trail(os.path.join(work, "backup", "imagetrails"), "MIT",
                                 backwards=True, limit=50)
        done_us = min(r["savepoint"]["time_us"] for r in mit
                      if r.get("frame_type") == 16 and r["savepoint"]["asn"] >= end)
        secs = done_us / 1e6 - t0
        return {"records": records, "seconds": round(secs, 3),
                "records_per_s": round(records / secs),
                "receiver_rss_anon_mib": round(peak["receiver"] / 1024, 1),
                "extractor_rss_anon_mib": round(peak["extractor"] / 1024, 1)}
    finally:
        rdftest.remove(work)


def latency(rate, seconds):
    work, cfg = system()
    try:
        rx = start(work, cfg, "rdf-receiver")
        ex = start(work, cfg, "rdf-extractor")
        time.sleep(1)
        load = rdftest.Process([rdftest.binary("rdf-load"), "--config", cfg, "--seconds",
                                str(seconds), "--clients", "8", "--rate", str(rate / 5),
                                "--quiet"], log_path=os.path.join(work, "load.log"))
        load.wait(seconds + 120)
        time.sleep(2)
        ex.stop()
        rx.stop()
        mit = rdftest.read_trail(os.path.join(work, "backup", "imagetrails"), "MIT")
        pending, lat = [], []
        for r in mit:
            if r.get("frame_type") == 16:
                t = r["savepoint"]["time_us"]
                lat += [t - c for c in pending]
                pending = []
            elif r.get("type") == "COMMIT":
                pending.append(r["time_us"])
        lat.sort()
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000 if lat else None
        return {"offered_records_per_s": rate, "commits": len(lat),
                "commit_to_save_point_p50_ms": pick(0.5), "commit_to_save_point_p99_ms": pick(0.99),
                "commit_to_save_point_max_ms": lat[-1] / 1000 if lat else None}
    finally:
        rdftest.remove(work)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--rate", type=int, default=50_000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--set", action="append", default=[], metavar="BLOCK.FIELD=VALUE",
                    help="configuration setting for both phases (repeatable)")
    a = ap.parse_args()
    add_settings(a.set)
    out = {"bench": "ship", "settings": EXTRA, "throughput": throughput(a.records), "latency": latency(a.rate, a.seconds)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
