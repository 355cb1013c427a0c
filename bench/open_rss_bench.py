#!/usr/bin/env python3
"""Memory with many transactions open (invariant 6). Prints one JSON line.

A fresh system on loopback runs the whole pipeline under its monitors (the
primary's monitor starts the extractor; the backup's the receiver, 4
updaters and the purger) while the application, rdf-load --mode wide, keeps
--open-txns transactions open at once (each held --hold-ms, then ended and
replaced at once) and its --clients write values up to --max-value-bytes
(tmf/wide_load.h: most small, sizes log-uniform, a few near the largest);
the open transactions' values are drawn the same way up to
--open-max-value-bytes. tmf's own gauge of the change images it holds in
memory (its peak since it opened, from `rdfcom status --json`) is reported
beside its bound, tmf.image_memory_bytes.
Every --interval seconds RssAnon (/proc/PID/status) of every process is
sampled: rdf-load (tmf), extractor, receiver, each updater, purger and both
monitors (the monitors' children are found by their lock files, so a
restarted child is followed and counted in "pids").

The measured window starts when the receiver's newest save point lists at
least --open-txns open transactions (read from the MIT) and lasts
--seconds; peaks over the window and over the whole run are reported per
process, in MiB, against the target 64 MiB + 2 x the largest record tmf
accepts (tmf.max_txn_bytes: one record can be a whole transaction's audit),
with pass/fail per process.

  bench/open_rss_bench.py [--seconds 60] [--open-txns 10000] [--hold-ms 15000]
                          [--clients 2] [--max-txn-bytes 67108864]
                          [--max-value-bytes MAX_TXN-64KiB]
                          [--open-max-value-bytes MAX_VALUE] [--seed 12]
                          [--interval 1.0] [--set block.field=value]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "process"))
import rdftest  # noqa: E402
from ship_bench import rss_anon_kb  # noqa: E402

VOLUMES = ["DATA01", "DATA02", "DATA03", "DATA04"]
MIB = 1 << 20


def log(msg):
    print(f"open_rss_bench: {msg}", file=sys.stderr, flush=True)


def fresh(settings):
    """A fresh system with ports of its own (others may run on this machine)."""
    work, cfg = rdftest.fresh_system(settings, prefix="rdf-bench-rss.")
    rdftest.write_test_keys(work)
    with open(cfg) as f:
        text = f.read()
    for old in ("17410", "17411", "17420", "17421", "17422"):
        text = re.sub(rf": {old}\b", f": {rdftest.free_port()}", text)
    with open(cfg, "w") as f:
        f.write(text)
    return work, cfg


def vm_hwm_kb(pid):
    """VmHWM: the process's peak resident set (anonymous and file-backed,
    so LMDB's mapped pages too) since it started: catches a peak between
    two samples, as an upper bound on RssAnon."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def rdfcom_status(cfg):
    r = subprocess.run([rdftest.binary("rdfcom"), "--config", cfg, "status", "--json"],
                       capture_output=True, text=True, timeout=30)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {}


def rdfcom_state(cfg):
    return rdfcom_status(cfg).get("state")


def open_at_save_point(work):
    """Open transactions listed by the newest save point in the MIT (0: none yet)."""
    try:
        recs = rdftest.read_trail(os.path.join(work, "backup", "imagetrails"), "MIT",
                                  backwards=True, limit=20, timeout=60)
    except (FileNotFoundError, rdftest.TrailDamage):
        return 0
    sp = next((r["savepoint"] for r in recs if r.get("frame_type") == 16), None)
    return len(sp.get("open") or []) if sp else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60,
                    help="measured window once --open-txns are open at a save point")
    ap.add_argument("--open-txns", type=int, default=10_000)
    ap.add_argument("--hold-ms", type=int, default=15_000)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--max-txn-bytes", type=int, default=64 * MIB,
                    help="tmf.max_txn_bytes: the largest record tmf accepts (default 64 MiB)")
    ap.add_argument("--max-value-bytes", type=int, default=0,
                    help="rdf-load --max-value-bytes (default: max-txn-bytes - 64 KiB)")
    ap.add_argument("--open-max-value-bytes", type=int, default=0,
                    help="rdf-load --open-max-value-bytes (default: --max-value-bytes)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--ramp-timeout", type=int, default=600,
                    help="seconds allowed to reach --open-txns open at a save point")
    ap.add_argument("--set", action="append", default=[], metavar="BLOCK.FIELD=VALUE")
    a = ap.parse_args()
    max_value = a.max_value_bytes or a.max_txn_bytes - (64 << 10)
    open_max_value = a.open_max_value_bytes or max_value
    settings = {"tmf.max_txn_bytes": a.max_txn_bytes}
    for kv in a.set:
        k, v = kv.split("=", 1)
        settings[k] = v
    image_budget = int(settings.get("tmf.image_memory_bytes", 32 * MIB))
    work, cfg = fresh(settings)
    nodes = {"primary": os.path.join(work, "primary"), "backup": os.path.join(work, "backup")}
    # process name -> (node, lock name); tmf is rdf-load, followed by its pid.
    watched = {"monitor-primary": ("primary", "monitor"), "extractor": ("primary", "extractor"),
               "monitor-backup": ("backup", "monitor"), "receiver": ("backup", "receiver"),
               "purger": ("backup", "purger")}
    watched.update({f"updater-{v}": ("backup", f"updater-{v}") for v in VOLUMES})
    monitors, load = [], None
    try:
        for node in ("backup", "primary"):
            monitors.append(rdftest.Process(
                [rdftest.binary("rdf-monitor"), "--config", cfg, "--node", node],
                log_path=os.path.join(work, f"monitor-{node}.log")))
        rdftest.wait_for(lambda: rdfcom_state(cfg) == "NORMAL", 120, "state NORMAL")
        run_s = a.ramp_timeout + a.seconds + 60  # rdf-load's own bound; stopped before
        load = rdftest.Process(
            [rdftest.binary("rdf-load"), "--config", cfg, "--mode", "wide", "--seconds",
             str(run_s), "--clients", str(a.clients), "--max-value-bytes", str(max_value),
             "--open-txns", str(a.open_txns), "--hold-ms", str(a.hold_ms),
             "--open-max-value-bytes", str(open_max_value), "--seed",
             str(a.seed)], log_path=os.path.join(work, "load.log"))
        peak_all = {n: 0 for n in ["tmf"] + list(watched)}
        peak_win = dict(peak_all)
        pids = {n: set() for n in peak_all}
        hwm = dict(peak_all)
        samples = 0
        open_seen, open_in_window = [], []
        t0 = time.time()
        window_start = None
        next_open_check = 0.0
        while time.time() - t0 < a.ramp_timeout + a.seconds + 30:
            now = time.time()
            if window_start is not None and now - window_start >= a.seconds:
                break
            if load.p.poll() is not None:
                raise RuntimeError(f"rdf-load exited {load.p.returncode} (see {work}/load.log)")
            cur = {"tmf": load.pid}
            for n, (node, lock) in watched.items():
                cur[n] = rdftest.lock_holder(nodes[node], lock)
            for n, pid in cur.items():
                if pid > 0:
                    pids[n].add(pid)
                    kb = rss_anon_kb(pid)
                    peak_all[n] = max(peak_all[n], kb)
                    hwm[n] = max(hwm[n], vm_hwm_kb(pid))
                    if window_start is not None:
                        peak_win[n] = max(peak_win[n], kb)
            if window_start is not None:
                samples += 1
            if now >= next_open_check:  # reading the MIT costs; every 5 s is enough
                n_open = open_at_save_point(work)
                open_seen.append(n_open)
                if window_start is not None:
                    open_in_window.append(n_open)
                log(f"{now - t0:.0f} s: {n_open} open at the newest save point; RssAnon MiB "
                    + " ".join(f"{k}={v / 1024:.0f}" for k, v in peak_all.items()))
                if window_start is None and n_open >= a.open_txns:
                    window_start = time.time()
                    open_in_window.append(n_open)
                    log("measuring")
                next_open_check = now + 5
            time.sleep(max(0.0, a.interval - (time.time() - now)))
        if window_start is None:
            raise RuntimeError(f"never {a.open_txns} open at a save point within "
                               f"{a.ramp_timeout} s (most seen {max(open_seen or [0])})")
        app = rdfcom_status(cfg).get("application") or {}
        load.stop(timeout=120)
        progress = [l for l in open(os.path.join(work, "load.log")).read().splitlines()
                    if l.startswith("rdf-load wide:")]
        target = 64 * MIB + 2 * a.max_txn_bytes
        procs = {}
        for n in peak_all:
            procs[n] = {"peak_rss_anon_mib": round(peak_win[n] / 1024, 1),
                        "peak_rss_anon_mib_whole_run": round(peak_all[n] / 1024, 1),
                        "vm_hwm_mib": round(hwm[n] / 1024, 1),
                        "pids": len(pids[n]),
                        "pass": peak_win[n] * 1024 < target,
                        "pass_whole_run": peak_all[n] * 1024 < target}
        print(json.dumps({
            "bench": "open_rss", "open_txns": a.open_txns, "hold_ms": a.hold_ms,
            "clients": a.clients, "max_txn_bytes": a.max_txn_bytes,
            "max_value_bytes": max_value, "seed": a.seed, "seconds": a.seconds,
            "samples": samples, "interval_s": a.interval,
            "ramp_s": round(window_start - t0, 1),
            "open_at_save_points_in_window_min": min(open_in_window),
            "open_at_save_points_in_window_max": max(open_in_window),
            "load_last_progress": progress[-1] if progress else None,
            "target_mib": round(target / MIB, 1),
            "open_max_value_bytes": open_max_value,
            "tmf_image_bytes_peak_mib": round(int(app.get("image_bytes_peak", 0)) / MIB, 1),
            "tmf_image_memory_bytes_mib": round(image_budget / MIB, 1),
            "tmf_image_bound_kept": int(app.get("image_bytes_peak", 0)) <= image_budget,
            "tmf_spilled_images": int(app.get("spilled_images", 0)),
            "processes": procs, "all_pass": all(p["pass"] for p in procs.values()),
            "settings": settings}))
    finally:
        if load is not None:
            load.stop(timeout=120)
        for m in reversed(monitors):
            m.stop(timeout=90)
        rdftest.remove(work)


if __name__ == "__main__":
    main()
