#!/usr/bin/env python3
"""Soak benchmark: trails stay flat and purging costs no RTD. Prints one JSON line.

A fresh system with small segments (1 MiB audit and image segments) runs
the whole pipeline (receiver, extractor, 4 updaters, and the purger unless
--only without) while rdf-load offers a steady rate for --seconds. Every second
it samples the bytes of every trail on both nodes (the primary's audit trail,
the backup's MIT and volume trails) and each updater's RTD (its status).
--only with|without does the runs of one kind only (to complete a campaign
that was cut short; the medians then need the other kind's earlier runs).

Reported per run and trail: peak, steady (median over the second half) and
final bytes, and whether final <= steady + 2 segments ("flat"); p50/p99/max
of the updaters' RTD samples. With --runs N, the runs alternate with and
without the purger and the medians of p99 RTD are compared (purging must not
raise p99 RTD by more than 20 ms).

  bench/soak_bench.py [--seconds 600] [--rate 1000] [--runs 3]
"""

import argparse
import glob
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "process"))
import rdftest  # noqa: E402
from ship_bench import EXTRA, add_settings, system  # noqa: E402

VOLUMES = ["$DATA01", "$DATA02", "$DATA03", "$DATA04"]
SEGMENT = 1 << 20


def trail_bytes(dir, name):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(dir, f"{name}.*"))
               if p.rsplit(".", 1)[-1].isdigit())


def one_run(seconds, rate, purger):
    work, cfg = system()
    procs = []
    try:
        def start(name, *args):
            p = rdftest.Process([rdftest.binary(name), "--config", cfg, *args],
                                log_path=os.path.join(work, name + ".log"))
            procs.append(p)
        start("rdf-receiver")
        start("rdf-extractor")
        for v in VOLUMES:
            start("rdf-updater", "--volume", v)
        if purger:
            start("rdf-purger")
        time.sleep(1)
        load = rdftest.Process([rdftest.binary("rdf-load"), "--config", cfg, "--seconds",
                                str(seconds), "--clients", "8", "--rate", str(rate), "--quiet"],
                               log_path=os.path.join(work, "load.log"))
        trails = {"primary/MAT": (os.path.join(work, "primary", "audit"), "MAT")}
        for t in ["MIT"] + [v.lstrip("$") for v in VOLUMES]:
            trails[f"backup/{t}"] = (os.path.join(work, "backup", "imagetrails"), t)
        samples = {k: [] for k in trails}
        rtd = []
        t0 = time.time()
        while load.p.poll() is None and time.time() - t0 < seconds + 60:
            time.sleep(1)
            for k, (d, n) in trails.items():
                samples[k].append(trail_bytes(d, n))
            for v in VOLUMES:
                st = rdftest.status(os.path.join(work, "backup"), f"updater-{v.lstrip('$')}") or {}
                if st.get("rtd_ms", -1) >= 0:
                    rtd.append(st["rtd_ms"])
        load.wait(60)
        out = {"purger": purger, "trails": {}}
        for k, s in samples.items():
            half = s[len(s) // 2:] or s
            steady = statistics.median(half)
            out["trails"][k] = {"peak": max(s), "steady": round(steady), "final": s[-1],
                                "flat": s[-1] <= steady + 2 * SEGMENT}
        rtd.sort()
        pick = lambda q: rtd[min(len(rtd) - 1, int(q * len(rtd)))] if rtd else None
        out.update({"rtd_p50_ms": pick(0.5), "rtd_p99_ms": pick(0.99),
                    "rtd_max_ms": rtd[-1] if rtd else None, "rtd_samples": len(rtd)})
        return out
    finally:
        for p in procs:
            p.stop()
        rdftest.remove(work)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--rate", type=int, default=1000, help="transactions/s (5 records each)")
    ap.add_argument("--runs", type=int, default=3, help="runs with and (as many) without purging")
    ap.add_argument("--only", choices=["with", "without"], help="only runs of this kind")
    ap.add_argument("--set", action="append", default=[], metavar="BLOCK.FIELD=VALUE")
    a = ap.parse_args()
    EXTRA.update({"trail.audit_segment_bytes": SEGMENT, "trail.image_segment_bytes": SEGMENT,
                  "tmf.retain_count": 2})
    add_settings(a.set)
    runs = []
    for i in range(a.runs):
        for purger in (True, False):
            if a.only and purger != (a.only == "with"):
                continue
            r = one_run(a.seconds, a.rate, purger)
            print(f"soak_bench: {json.dumps(r)}", file=sys.stderr, flush=True)
            runs.append(r)
    med = lambda p: statistics.median([r["rtd_p99_ms"] for r in runs if r["purger"] == p] or [0])
    with_p, without = med(True), med(False)
    flat = all(t["flat"] for r in runs if r["purger"] for t in r["trails"].values())
    print(json.dumps({"bench": "soak", "seconds": a.seconds, "rate_txn_per_s": a.rate,
                      "segment_bytes": SEGMENT, "runs": runs,
                      "median_rtd_p99_ms_with_purger": with_p,
                      "median_rtd_p99_ms_without_purger": without,
                      "purging_raises_p99_rtd_ms": with_p - without,
                      "all_trails_flat_with_purger": flat}))


if __name__ == "__main__":
    main()
