#!/usr/bin/env python3
"""Updater benchmark (backup node). Prints one JSON line.

Phase 1 (apply rate), once for insert-mode keys and once for random upserts
over 1,000,000 keys: rdf-load pre-writes N DATA records (100-byte values,
4 volumes, 5 records per transaction) on the primary, the receiver and
extractor ship them into the image trails and stop; then the 4 updaters
start and the time until every volume has applied its whole trail gives
records/s together. rdf-bench-apply-watch sees each volume's applied ASN
move (LMDB read transactions every 1 ms); RssAnon of each updater is sampled
throughout (peak reported).

Phase 1b (mixed sizes, --phases mixed): the same, for a backlog of
--mixed-records records whose values are drawn log-uniformly from
--mixed-min-bytes to --mixed-max-bytes (rdf-load --min-value-bytes, seeded
by --mixed-seed; 1 KiB to 1 MiB, mean about 150 kB), then for a fresh
backlog of --mixed-small-records records of 100 bytes, so that the two sit
side by side: records/s, and MB/s of image-trail payload applied (each
record's payload as the save point counts it: key, after image and the
record's header fields, so about 143 bytes for a 100-byte value), and
peak RssAnon of the updaters.

Phase 2 (end to end): tmf's maximum commit rate with 8 clients is measured
alone and with the whole pipeline running on the same machine (the rate it
can sustain here); then rdf-load offers half of the latter from 8 clients,
once with insert-mode keys and once with random upserts over 1,000,000 keys
(each upsert rewrites a random LMDB page on both nodes). For every transaction, latency = the time the last volume holding
its records applied them (seen by the watcher) minus its COMMIT's time
(both this machine's clock); p50/p99/max are reported.

Phase 3 (takeover): the receiver and extractor run (no updaters) while
rdf-load runs many clients with think time, so many transactions are open;
once the backlog reaches --takeover-records records the primary is killed
with SIGKILL and `rdfcom takeover` runs: its wall time and the report's
duration, lost transactions and undone records are reported.

  bench/updater_bench.py [--records 2000000] [--seconds 20]
                         [--takeover-records 100000] [--takeover-clients 1000]
                         [--phases apply,e2e,takeover]
                         [--mixed-records 20000] [--mixed-min-bytes 1024]
                         [--mixed-max-bytes 1048576] [--mixed-seed 1]
                         [--mixed-small-records 2000000]
                         (mixed runs only when named: --phases mixed)
                         (apply = apply_insert,apply_upsert;
                          e2e = e2e_insert,e2e_upsert)
"""

import argparse
import bisect
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "process"))
import rdftest  # noqa: E402
from ship_bench import EXTRA, add_settings, rss_anon_kb, system  # noqa: E402

VOLUMES = ["$DATA01", "$DATA02", "$DATA03", "$DATA04"]


def log(msg):
    print(f"updater_bench: {msg}", file=sys.stderr, flush=True)


def start(work, cfg, name, *args):
    return rdftest.Process([rdftest.binary(name), "--config", cfg, *args],
                           log_path=os.path.join(work, name + "".join(args).replace("$", "") + ".log"))


def load(work, cfg, *args):
    r = subprocess.run([rdftest.binary("rdf-load"), "--config", cfg, "--quiet", *args],
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def ship_all(work, cfg):
    """Ships the whole audit trail into the image trails; returns the save point."""
    end = rdftest.read_trail(os.path.join(work, "primary", "audit"), "MAT",
                             backwards=True, limit=1)[0]["asn"]
    rx = start(work, cfg, "rdf-receiver")
    ex = start(work, cfg, "rdf-extractor")
    rdftest.wait_for(lambda: (rdftest.status(os.path.join(work, "backup"), "receiver") or {})
                     .get("save_point_asn", 0) >= end, 600, "shipping")
    ex.stop()
    rx.stop()
    mit = rdftest.read_trail(os.path.join(work, "backup", "imagetrails"), "MIT",
                             backwards=True, limit=5)
    return next(r["savepoint"] for r in mit if r.get("frame_type") == 16)


class Watch:
    """rdf-bench-apply-watch: (time_us, applied ASN) per volume."""

    def __init__(self, work, cfg):
        self.path = os.path.join(work, "watch.txt")
        self.f = open(self.path, "w")
        self.p = subprocess.Popen([rdftest.binary("rdf-bench-apply-watch"), "--config", cfg],
                                  stdout=self.f)

    def stop(self):
        self.p.terminate()
        self.p.wait(30)
        self.f.close()
        series = {v: ([], []) for v in VOLUMES}
        with open(self.path) as f:
            for line in f:
                t, v, asn = line.split()
                series[v][0].append(int(asn))
                series[v][1].append(int(t))
        return series


def apply_rate(mode, records, values=(), name=None):
    """`values`: rdf-load arguments for the values (default 100 bytes each)."""
    work, cfg = system()
    ups = {}
    name = name or mode
    try:
        t0 = time.time()
        extra = ["--mode", mode] + (["--keys", "1000000"] if mode == "upsert" else [])
        load(work, cfg, "--txns", str(max(1, records // 5)), "--clients", "8", *extra, *values)
        sp = ship_all(work, cfg)
        log(f"{name}: pre-wrote and shipped {records} records in {time.time() - t0:.1f} s")
        final = {t["trail"]: t for t in sp["trails"]}
        trail_records = sum(final[v.lstrip("$")].get("records", 0) for v in VOLUMES)
        trail_bytes = sum(final[v.lstrip("$")].get("bytes", 0) for v in VOLUMES)
        watch = Watch(work, cfg)
        time.sleep(0.3)
        t0 = time.time()
        ups.update({v: start(work, cfg, "rdf-updater", "--volume", v) for v in VOLUMES})
        peak = {v: 0 for v in VOLUMES}
        backup = os.path.join(work, "backup")

        def done():
            for v in VOLUMES:
                peak[v] = max(peak[v], rss_anon_kb(ups[v].pid))
            return all((rdftest.status(backup, f"updater-{v.lstrip('$')}") or {})
                       .get("position", {}).get("asn", 0) >= final[v.lstrip("$")]["asn"]
                       for v in VOLUMES)
        rdftest.wait_for(done, 1800, "the updaters to apply everything")
        for p in ups.values():
            p.stop()
        series = watch.stop()
        end_us = max(series[v][1][-1] for v in VOLUMES)
        secs = end_us / 1e6 - t0
        return {"mode": name, "records": trail_records, "seconds": round(secs, 3),
                "records_per_s": round(trail_records / secs),
                "payload_bytes": trail_bytes,
                "mean_record_bytes": round(trail_bytes / max(1, trail_records)),
                "mb_per_s": round(trail_bytes / secs / 1e6, 1),
                "updater_rss_anon_mib_max": round(max(peak.values()) / 1024, 1)}
    finally:
        for p in ups.values():
            p.stop()
        rdftest.remove(work)


def end_to_end(seconds, mode):
    work, cfg = system()
    try:
        alone = load(work, cfg, "--seconds", "5", "--clients", "8", "--mode", mode)
    finally:
        rdftest.remove(work)
    work, cfg = system()
    procs = []
    try:
        procs += [start(work, cfg, "rdf-receiver"), start(work, cfg, "rdf-extractor")]
        procs += [start(work, cfg, "rdf-updater", "--volume", v) for v in VOLUMES]
        time.sleep(1.5)
        # tmf's maximum with the pipeline sharing the machine, then half of it.
        full = load(work, cfg, "--seconds", "5", "--clients", "8", "--mode", mode)
        rate = full["txn_per_s"] / 2
        log(f"tmf: {alone['txn_per_s']:.0f} txn/s alone, {full['txn_per_s']:.0f} with the "
            f"pipeline running (8 clients); offering {rate:.0f}")
        rdftest.wait_for(lambda: all(
            (rdftest.status(os.path.join(work, "backup"), f"updater-{v.lstrip('$')}") or {})
            .get("backlog_records", 1) == 0 for v in VOLUMES), 300, "the backlog to drain")
        watch = Watch(work, cfg)
        time.sleep(0.5)
        commits = os.path.join(work, "commits.log")
        result = load(work, cfg, "--seconds", str(seconds), "--clients", "8", "--mode", mode,
                      "--rate", str(rate), "--commit-log", commits)
        time.sleep(3)
        for p in procs:
            p.stop()
        series = watch.stop()
        measured = rdftest.read_commit_log(commits)
        backup = os.path.join(work, "backup")
        commit_time, saved, pending = {}, [], []
        for r in rdftest.image_records(backup, "MIT"):
            if r.get("type") == "COMMIT" and r["txid"] in measured:
                commit_time[r["txid"]] = r["time_us"]
                pending.append(r["time_us"])
            elif r.get("frame_type") == 16:
                saved += [r["savepoint"]["time_us"] - c for c in pending]
                pending = []
        saved.sort()
        applied = {}  # txid -> time its last volume applied it
        for v in VOLUMES:
            asns, times = series[v]
            for r in rdftest.image_records(backup, v):
                if r.get("type") != "DATA" or r["txid"] not in commit_time:
                    continue
                i = bisect.bisect_left(asns, r["asn"])
                if i == len(asns):
                    continue  # not applied when the watch stopped
                applied[r["txid"]] = max(applied.get(r["txid"], 0), times[i])
        lat = sorted(applied[t] - commit_time[t] for t in applied)
        pick = lambda q, l=lat: round(l[min(len(l) - 1, int(q * len(l)))] / 1000, 2)
        return {"mode": mode, "tmf_alone_txn_per_s": round(alone["txn_per_s"]),
                "tmf_with_pipeline_txn_per_s": round(full["txn_per_s"]),
                "offered_txn_per_s": round(rate), "committed_txn_per_s": round(result["txn_per_s"]),
                "transactions": len(lat), "not_applied": len(commit_time) - len(applied),
                "commit_to_apply_p50_ms": pick(0.5), "commit_to_apply_p99_ms": pick(0.99),
                "commit_to_apply_max_ms": pick(1.0),
                "commit_to_save_point_p50_ms": pick(0.5, saved),
                "commit_to_save_point_p99_ms": pick(0.99, saved)}
    finally:
        for p in procs:
            p.stop()
        rdftest.remove(work)


def takeover(records, clients):
    work, cfg = system()
    procs = []
    try:
        backup = os.path.join(work, "backup")
        procs += [start(work, cfg, "rdf-receiver"), start(work, cfg, "rdf-extractor")]
        time.sleep(1)
        ld = rdftest.Process([rdftest.binary("rdf-load"), "--config", cfg, "--seconds", "600",
                              "--clients", str(clients), "--think-us", "5000", "--quiet"],
                             log_path=os.path.join(work, "load.log"))

        def backlog():
            sp = (rdftest.status(backup, "receiver") or {})
            return sp.get("records", 0) >= records
        rdftest.wait_for(backlog, 600, f"{records} records received")
        ld.kill()
        procs[1].kill()  # the primary's process set is gone
        t0 = time.time()
        tk = subprocess.Popen([rdftest.binary("rdfcom"), "--config", cfg, "takeover", "--yes",
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
        peak = 0
        while tk.poll() is None:  # RssAnon of the takeover's updaters
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                if b"--takeover" in cmd and cfg.encode() in cmd:
                    peak = max(peak, rss_anon_kb(int(pid)))
            time.sleep(0.01)
        out, err = tk.communicate()
        wall = time.time() - t0
        if tk.returncode != 0:
            raise RuntimeError(err)
        report = json.loads(out)
        procs[0].stop()
        received = sum(t.get("records", 0)
                       for t in rdftest.read_trail(os.path.join(backup, "imagetrails"), "MIT",
                                                   backwards=True, limit=3)[0]
                       .get("savepoint", {}).get("trails", []))
        return {"records_in_trails": received,
                "lost_transactions": len(report["lost_transactions"]),
                "undone_records": report["undone_records"],
                "report_duration_ms": report["duration_ms"],
                "rdfcom_wall_ms": round(wall * 1000),
                "updater_rss_anon_mib_max": round(peak / 1024, 1)}
    finally:
        for p in procs:
            p.stop()
        rdftest.remove(work)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--takeover-records", type=int, default=100_000)
    ap.add_argument("--takeover-clients", type=int, default=1024)
    ap.add_argument("--phases", default="apply,e2e,takeover")
    ap.add_argument("--mixed-records", type=int, default=20_000,
                    help="mixed: records of mixed sizes in the backlog")
    ap.add_argument("--mixed-min-bytes", type=int, default=1024)
    ap.add_argument("--mixed-max-bytes", type=int, default=1 << 20)
    ap.add_argument("--mixed-seed", type=int, default=1)
    ap.add_argument("--mixed-small-records", type=int, default=2_000_000,
                    help="mixed: records of 100 bytes in the backlog measured beside it")
    ap.add_argument("--set", action="append", default=[], metavar="BLOCK.FIELD=VALUE",
                    help="configuration setting for every phase (repeatable)")
    a = ap.parse_args()
    add_settings(a.set)
    phases = a.phases.split(",")
    out = {"bench": "updater", "settings": EXTRA}
    for mode in ("insert", "upsert"):
        if "apply" in phases or f"apply_{mode}" in phases:
            out[f"apply_{mode}"] = apply_rate(mode, a.records)
            log(json.dumps(out[f"apply_{mode}"]))
    if "mixed" in phases:
        values = ["--value-bytes", str(a.mixed_max_bytes), "--min-value-bytes",
                  str(a.mixed_min_bytes), "--seed", str(a.mixed_seed)]
        mixed = apply_rate("insert", a.mixed_records, values, "mixed")
        log(json.dumps(mixed))
        small = apply_rate("insert", a.mixed_small_records, (), "small")
        log(json.dumps(small))
        out["apply_mixed"] = {
            "value_bytes": {"min": a.mixed_min_bytes, "max": a.mixed_max_bytes,
                            "distribution": "log-uniform", "seed": a.mixed_seed},
            "mixed": mixed, "small": small,
            "mixed_mb_per_s_over_small": round(mixed["mb_per_s"] / max(0.1, small["mb_per_s"]), 2),
            "updater_rss_anon_mib_max": max(mixed["updater_rss_anon_mib_max"],
                                            small["updater_rss_anon_mib_max"])}
    for mode in ("insert", "upsert"):
        if "e2e" in phases or f"e2e_{mode}" in phases:
            out[f"end_to_end_{mode}"] = end_to_end(a.seconds, mode)
            log(json.dumps(out[f"end_to_end_{mode}"]))
    if "takeover" in phases:
        out["takeover"] = takeover(a.takeover_records, a.takeover_clients)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
