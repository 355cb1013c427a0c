#!/usr/bin/env python3
"""A seeded, repeatable, bounded fault campaign against a whole rdf system on
loopback (docs/chaos.md).

Both nodes run under their monitors; the extractor reaches the receiver
through a fault-injecting TCP proxy (tests/process/fault_proxy.py; tc netem
is not available here); as root, each node's data folder is an ext4 file
system of its own on a loop device, so that its disk can be filled, frozen
and lose power. While rdf-load commits at a
steady rate, the campaign injects one fault at a time, at random moments
chosen by the seed. The workload is `rdf-load --mode wide` (tmf/wide_load.h:
records from 0 bytes to 1 MiB, updates and deletes, counters that deadlock,
aborts, 100 transactions held open at once, DDL racing writes, bursts and
idle periods; a new seed each time the application restarts), checked with
tests/process/check_wide.py against its commit log; `--workload insert` runs
the old insert-mode load (5 records per transaction) instead. The faults:

  kill        SIGKILL of a random process of either node (extractor,
              receiver, an updater, the purger); its monitor restarts it
  stop        the receiver is SIGSTOPped for 6-12 s (longer than the
              extractor's acknowledgement timeout), then continued
  kill_app    SIGKILL of the application (rdf-load, i.e. tmf); a new one
              starts and recovers
  cut         the link is cut (every connection reset, new ones refused)
              for 1-5 s, then restored
  delay       every chunk through the link is delayed 20-200 ms for 3-8 s
  disk_full   the backup's disk is filled for 6-12 s, then freed (the image
              trails, the volumes and the status files meet ENOSPC)
  freeze      the backup's file system is frozen (fsfreeze) for 6-12 s: every
              write and sync of the receiver and the updaters blocks while
              their connections stay up (the receiver's main thread stalls
              past the extractor's acknowledgement timeout)
  monitor     a node's monitor is SIGKILLed (its children die with it) and
              started again
  power       the primary's disk loses power (when run as root: its data
              folder is an ext4 file system of its own on a loop device,
              shut down without flushing its journal, so nothing unsynced
              survives), with the application and the primary's monitor;
              after the file system is mounted again both start and recover
  backup_power  the backup's disk loses power with its monitor (and so every
              backup process); the monitor starts again on a new boot, so the
              updaters go back to their volumes' checkpoints, and `rdfcom
              verify` runs at once (its scans open the volumes meanwhile)
  sync_eio    every fdatasync, fsync and msync(MS_SYNC) of one node's processes
              (its monitor and children; on the primary also the
              application, tmf) fails with EIO for 2-8 s, through the
              LD_PRELOAD seam build/lib/librdf-sync-fault.so
              (tests/tools/sync_fault.cc; device-mapper is not available
              here): nothing written since the last good sync may count as
              durable

Every volume's LMDB map starts at 1 MiB on both nodes, so that tmf and the
updaters grow their maps again and again, and the backup's updaters run with
RDF_TEST_POINTS=updater.crash_in_growth: each growth of a volume's map SIGKILLs its
updater once, at one of the growth's four steps in turn (the monitor starts
it again); the summary counts these crashes ("growth_crashes").

After each fault it measures the time to recover: until the backup has
received and applied everything the primary had written when the fault
ended. At the end, in mode `drain`, the application is stopped and
recovered, the pipeline drained, and the backup must equal the primary
(mdb_dump of every protected file, and `rdfcom verify`) with every committed
transaction present: 0 lost. In mode `takeover`, the whole primary is
SIGKILLed mid-load and the backup takes over: every transaction on it must
be whole, every transaction whose COMMIT reached the final save point must
be present and no other, and the lost ones are exactly those whose COMMIT
never reached a save point.

  tests/chaos/chaos.py [--seed N] [--minutes 10] [--mode drain|takeover|both]
                       [--kinds kill,cut,...]

Prints progress on stderr and a summary (one JSON line last on stdout).
Exit 0 only with 0 violations.
"""

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "process"))
import rdftest  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402

K = 5
VOLUMES = ["DATA01", "DATA02", "DATA03", "DATA04"]
KINDS = ["kill", "stop", "kill_app", "cut", "delay", "disk_full", "freeze", "monitor", "power",
         "backup_power", "sync_eio"]
RECOVERY_LIMIT_S = 120


def log(msg):
    print(f"chaos: {msg}", file=sys.stderr, flush=True)


class Campaign:
    def __init__(self, seed, rate, workload="wide", work_prefix="rdf-chaos."):
        self.rng = random.Random(seed)
        self.seed = seed
        self.rate = rate
        self.workload = workload
        self.loads_started = 0
        settings = {"trail.audit_segment_bytes": 1 << 20, "trail.image_segment_bytes": 1 << 20,
                    "purger.interval_ms": 1000,
                    # The primary keeps its whole audit: the takeover check
                    # reads every COMMIT's ASN from it.
                    "tmf.retain_count": 1000000}
        self.work, self.cfg = rdftest.fresh_system(settings, prefix=work_prefix)
        rdftest.write_test_keys(self.work)
        with open(self.cfg) as f:
            text = f.read()
        # Every map starts at 1 MiB (the default and each volume's own).
        text = re.sub(r"\bmap_bytes: \d+", "map_bytes: 1048576", text)
        self.ports = {}
        for old in ("17410", "17411", "17420", "17421", "17422"):
            self.ports[old] = rdftest.free_port()
            text = re.sub(rf": {old}\b", f": {self.ports[old]}", text)
        with open(self.cfg, "w") as f:
            f.write(text)
        # The primary's monitor (and so its extractor) dials the proxy.
        self.proxy = FaultProxy(target=("127.0.0.1", self.ports["17420"]))
        self.proxy.start()
        self.primary_cfg = os.path.join(self.work, "primary.textproto")
        with open(self.primary_cfg, "w") as f:
            f.write(re.sub(rf": {self.ports['17420']}\b", f": {self.proxy.port}", text))
        self.primary = os.path.join(self.work, "primary")
        self.backup = os.path.join(self.work, "backup")
        self.mounted = False
        self.disk = None  # the primary's data folder, whose power the campaign cuts
        self.backup_disk = None  # the backup's: filled, frozen, power cut
        if os.geteuid() == 0:
            self.disk = rdftest.LoopDisk(self.work, self.primary, size=2 << 30)
            self.backup_disk = rdftest.LoopDisk(self.work, self.backup, size=1 << 30)
            self.mounted = True
        self.backup_boots = 0
        self.commit_log = os.path.join(self.work, "commits.log")
        self.monitors = {}
        self.load = None
        # Boots of the primary's "machine": a power cut starts a new one, so
        # that tmf restores its volumes' checkpoint copies (RDF_TEST_POINTS=boot_id=...).
        self.primary_boots = 0
        self.faults = {k: 0 for k in KINDS}
        self.recovery = {k: [] for k in KINDS}
        self.violations = []
        self.verifies = []  # rdfcom verify started by faults, stopped by pid

    # --- processes -----------------------------------------------------------

    def node_env(self, node):
        """The environment of a node's processes: the sync fault seam, and
        the boot of its machine (a power cut starts a new one: updaters go
        back to their checkpoints, tmf restores its volumes' checkpoint
        copies)."""
        env = dict(os.environ, LD_PRELOAD=rdftest.library("librdf-sync-fault.so"),
                   RDF_SYNC_FAULT_FILE=self.sync_fault_file(node))
        boots = self.primary_boots if node == "primary" else self.backup_boots
        points = []  # RDF_TEST_POINTS (common/base/test_point.h)
        if boots:
            points.append(f"boot_id=chaos-{node}-boot-{boots}")
        if node == "backup":
            points.append("updater.crash_in_growth")
        if points:
            env["RDF_TEST_POINTS"] = ",".join(points)
        return env

    def sync_fault_file(self, node):
        # Outside the nodes' own file systems (frozen or cut by other faults).
        return os.path.join(self.work, f"sync-eio-{node}")

    def start_monitor(self, node):
        cfg = self.primary_cfg if node == "primary" else self.cfg
        # The backup's processes inherit its monitor's environment.
        env = self.node_env(node)
        self.monitors[node] = rdftest.Process(
            [rdftest.binary("rdf-monitor"), "--config", cfg, "--node", node],
            log_path=os.path.join(self.work, f"monitor-{node}.log"), env=env)

    def start_load(self):
        self.loads_started += 1
        if self.workload == "wide":
            # A seed of its own per start: each run writes keys of its own.
            mode = ["--mode", "wide", "--max-value-bytes", str(1 << 20), "--abort-percent", "5",
                    "--ddl", "--open-txns", "100", "--hold-ms", "2000", "--burst-ms", "5000",
                    "--idle-ms", "1500", "--seed", str(self.seed * 1000 + self.loads_started)]
        else:
            mode = ["--mode", "insert", "--rows-per-txn", str(K)]
        self.load = rdftest.Process(
            [rdftest.binary("rdf-load"), "--config", self.cfg, "--seconds", "100000", "--rate",
             str(self.rate), "--clients", "4", *mode, "--quiet", "--commit-log", self.commit_log],
            log_path=os.path.join(self.work, "load.log"), env=self.primary_env())

    def primary_env(self):
        """The application's environment: the primary's."""
        return self.node_env("primary")

    def rdfcom(self, *args, timeout=300):
        return subprocess.run([rdftest.binary("rdfcom"), "--config", self.cfg, *args],
                              capture_output=True, text=True, timeout=timeout)

    def status(self):
        r = self.rdfcom("status", "--json", timeout=60)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def cleanup(self):
        for v in self.verifies:
            v.kill()
        if self.load:
            self.load.kill()
        for m in self.monitors.values():
            m.stop(timeout=60)
        self.proxy.stop()
        if self.backup_disk:
            subprocess.run(["fsfreeze", "-u", self.backup], capture_output=True)
            self.backup_disk.remove()
        if self.disk:
            self.disk.remove()
        if os.environ.get("RDF_KEEP"):
            log(f"kept {self.work}")
        else:
            rdftest.remove(self.work)

    # --- progress ------------------------------------------------------------

    def audit_end(self):
        for _ in range(20):
            s = self.status()
            if s and s["primary"]["reachable"] and s["primary"]["audit_end_asn"] > 0:
                return s["primary"]["audit_end_asn"]
            time.sleep(0.5)
        return 0

    def caught_up(self, asn):
        """Whether the backup has received and applied everything through
        `asn`, judged from the processes' status files."""
        rcv = rdftest.status(self.backup, "receiver") or {}
        if rcv.get("save_point_asn", 0) < asn:
            return False
        return all((rdftest.status(self.backup, f"updater-{v}") or {}).get("applied_asn", 0) >= asn
                   for v in VOLUMES)

    def wait_recovered(self, kind):
        start = time.time()
        target = self.audit_end()
        while time.time() - start < RECOVERY_LIMIT_S:
            if self.caught_up(target):
                took = time.time() - start
                self.recovery[kind].append(took)
                return took
            time.sleep(0.2)
        self.violations.append(f"{kind}: not recovered within {RECOVERY_LIMIT_S} s "
                               f"(target ASN {target})")
        log(f"VIOLATION: {self.violations[-1]}")
        return None

    # --- faults --------------------------------------------------------------

    def fault(self, kind):
        rng = self.rng
        if kind == "kill":
            s = self.status() or {}
            rows = [s.get("extractor", {}), s.get("receiver", {}), s.get("purger", {})]
            rows += s.get("updaters", [])
            rows = [r for r in rows if r.get("pid", 0) > 0]
            if not rows:
                return "no running process"
            victim = rng.choice(rows)
            try:
                os.kill(victim["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            return f"SIGKILL {victim['name']} (pid {victim['pid']})"
        if kind == "stop":
            rcv = (self.status() or {}).get("receiver", {})
            if rcv.get("pid", 0) <= 0:
                return "no receiver running"
            hold = rng.uniform(6, 12)
            try:
                os.kill(rcv["pid"], signal.SIGSTOP)
                time.sleep(hold)
            finally:
                try:
                    os.kill(rcv["pid"], signal.SIGCONT)
                except ProcessLookupError:
                    pass
            return f"receiver SIGSTOPped for {hold:.1f} s"
        if kind == "kill_app":
            self.load.kill()
            self.start_load()
            return "SIGKILL of the application; a new one recovers and goes on"
        if kind == "cut":
            hold = rng.uniform(1, 5)
            self.proxy.cut()
            time.sleep(hold)
            self.proxy.restore()
            return f"link cut for {hold:.1f} s"
        if kind == "delay":
            ms, hold = rng.randint(20, 200), rng.uniform(3, 8)
            self.proxy.set_delay(ms)
            time.sleep(hold)
            self.proxy.set_delay(0)
            return f"link delayed {ms} ms for {hold:.1f} s"
        if kind == "disk_full":
            # Long enough that some trail needs a new segment meanwhile
            # (segments are preallocated: a full disk shows at the next one).
            hold = rng.uniform(6, 12)
            filler = os.path.join(self.backup, "filler")
            st = os.statvfs(self.backup)
            free = st.f_bavail * st.f_frsize
            subprocess.run(["fallocate", "-l", str(max(free - (256 << 10), 4096)), filler],
                           capture_output=True)
            time.sleep(hold)
            os.remove(filler)
            return f"backup disk full for {hold:.1f} s"
        if kind == "freeze":
            hold = rng.uniform(6, 12)
            subprocess.run(["fsfreeze", "-f", self.backup], check=True)
            try:
                time.sleep(hold)
            finally:
                subprocess.run(["fsfreeze", "-u", self.backup], check=True)
            return f"backup file system frozen for {hold:.1f} s"
        if kind == "backup_power":
            self.backup_disk.cut_power([self.monitors.pop("backup")])
            self.backup_boots += 1
            self.start_monitor("backup")
            # An operator's `rdfcom verify` while the updaters restore their
            # checkpoints: its scans open the backup's volumes meanwhile
            # (lmdb::VolumeGate). Its verdict does not matter here (the load
            # runs on); the pipeline must recover as always.
            self.verifies.append(rdftest.Process(
                [rdftest.binary("rdfcom"), "--config", self.cfg, "verify"],
                log_path=os.path.join(self.work, "verify-during-faults.log")))
            return ("the backup's disk lost power with its monitor; the monitor restarted "
                    "and rdfcom verify ran at once")
        if kind == "sync_eio":
            node = rng.choice(["primary", "backup"])
            hold = rng.uniform(2, 8)
            flag = self.sync_fault_file(node)
            failed_before = self.failed_syncs(node)
            with open(flag, "w"):
                pass
            try:
                time.sleep(hold)
            finally:
                os.remove(flag)
            return (f"syncs on the {node} failed with EIO for {hold:.1f} s "
                    f"({self.failed_syncs(node) - failed_before} failed calls noted)")
        if kind == "monitor":
            node = rng.choice(["primary", "backup"])
            self.monitors[node].kill()
            time.sleep(rng.uniform(0.2, 2))
            self.start_monitor(node)
            return f"SIGKILL of the {node} monitor, started again"
        if kind == "power":
            self.disk.cut_power([self.monitors.pop("primary"), self.load])
            self.primary_boots += 1
            self.start_monitor("primary")
            self.start_load()
            return "the primary's disk lost power; its monitor and the application restarted"
        raise ValueError(kind)

    # --- the campaign ----------------------------------------------------------

    def run(self, minutes, mode, only=None):
        root_only = ("disk_full", "freeze", "power", "backup_power")
        kinds = [k for k in (only or KINDS) if k not in root_only or self.disk]
        if not self.disk:
            log(f"not root: the faults {', '.join(root_only)} are left out")
        self.start_monitor("backup")
        self.start_monitor("primary")
        rdftest.wait_for(lambda: (self.status() or {}).get("state") == "NORMAL", 60,
                         "both nodes NORMAL")
        self.start_load()
        end = time.time() + minutes * 60
        n = 0
        while time.time() < end:
            time.sleep(self.rng.uniform(0.5, 3))
            kind = self.rng.choice(kinds)
            n += 1
            what = self.fault(kind)
            self.faults[kind] += 1
            took = self.wait_recovered(kind)
            log(f"fault {n} {kind}: {what}; recovered in "
                + (f"{took:.2f} s" if took is not None else "NEVER"))
        return self.finish(mode)

    def failed_syncs(self, node):
        """The failed syncs the seam noted (at most 10,000 per process)."""
        try:
            with open(self.sync_fault_file(node) + ".log") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0

    def growth_crashes(self):
        """Crashes of the backup's updaters in the middle of map growth."""
        n = 0
        for d in rdftest.volume_dirs(self.backup).values():
            try:
                with open(os.path.join(d, "test-growth-crashes")) as f:
                    n += int(f.read().split()[0])
            except (FileNotFoundError, IndexError, ValueError):
                pass
        return n

    def committed(self):
        return rdftest.read_commit_log(self.commit_log)

    def finish(self, mode):
        result = {}
        if mode == "drain":
            # Stop the application and recover it (tmf backs out what was open).
            self.load.kill()
            self.load = None
            if rdftest.Process([rdftest.binary("rdf-load"), "--config", self.cfg, "--txns", "0"],
                               log_path=os.path.join(self.work, "load.log"),
                               env=self.primary_env()).wait(300) != 0:
                self.violations.append("the primary did not recover")
            rdftest.wait_for(lambda: (self.status() or {}).get("state") == "NORMAL", 120,
                             "both nodes NORMAL before the drain")
            r = self.rdfcom("stop", "--drain", "--timeout", "300", timeout=420)
            if r.returncode != 0:
                self.violations.append(f"stop --drain failed: {r.stderr.strip()}")
            v = self.rdfcom("verify")
            if v.returncode != 0:
                self.violations.append(f"rdfcom verify: {v.stdout.strip()[-500:]}")
            cmp = subprocess.run(["python3", os.path.join(os.path.dirname(HERE), "process",
                                                          "check_volumes.py"),
                                  "--compare", self.primary, self.backup],
                                 capture_output=True, text=True)
            if cmp.returncode != 0:
                self.violations.append(f"mdb_dump compare: {cmp.stdout.strip()}")
            if self.workload == "wide":
                result = self.check_wide(["--node", self.primary, "--node", self.backup,
                                          "--drained"])
            else:
                present, problems = rdftest.check_insert_transactions(self.backup, K)
                committed = self.committed()
                lost = committed - present
                if problems:
                    self.violations.append(f"partial transactions: {problems[:5]}")
                if lost:
                    self.violations.append(f"{len(lost)} committed transactions missing, "
                                           f"e.g. {sorted(lost)[:10]}")
                result = {"committed": len(committed), "present_on_backup": len(present),
                          "lost": len(lost)}
        else:
            # The whole primary goes for good, mid-load: its monitor (and
            # with it the extractor) first, so the last commits never ship.
            self.monitors.pop("primary").kill()
            time.sleep(self.rng.uniform(0.05, 0.5))
            self.load.kill()
            self.load = None
            r = self.rdfcom("takeover", "--yes", "--json")
            if r.returncode != 0:
                self.violations.append(f"takeover failed: {r.stderr.strip()[-500:]}")
                return {}
            report = json.loads(r.stdout)
            if self.workload == "wide":
                result = self.check_wide(["--node", self.backup, "--takeover"])
                result["reported_lost_transactions"] = len(report["lost_transactions"])
                result["takeover_ms"] = report.get("duration_ms")
                return result
            last = report["last_asn"]
            commit_asn = {rec["txid"]: rec["asn"] for rec in rdftest.audit_records(self.primary)
                          if rec.get("type") == "COMMIT"}
            reached = {t for t, a in commit_asn.items() if a <= last}
            present, problems = rdftest.check_insert_transactions(self.backup, K)
            committed = self.committed()
            lost = committed - present
            reported = {t["txid"] for t in report["lost_transactions"]}
            if problems:
                self.violations.append(f"partial transactions: {problems[:5]}")
            if present != reached:
                self.violations.append(
                    f"present != COMMIT reached the save point: missing "
                    f"{sorted(reached - present)[:10]}, extra {sorted(present - reached)[:10]}")
            bad = [t for t in lost if commit_asn.get(t, 0) <= last]
            if bad:
                self.violations.append(f"lost although their COMMIT reached the save point: "
                                       f"{sorted(bad)[:10]}")
            if reported & present:
                self.violations.append(f"reported lost but present: {sorted(reported & present)[:10]}")
            result = {"committed": len(committed), "present_on_backup": len(present),
                      "lost": len(lost), "lost_commit_never_reached_save_point": len(lost) - len(bad),
                      "reported_lost_transactions": len(reported),
                      "takeover_ms": report.get("duration_ms")}
        return result

    def check_wide(self, args):
        """check_wide.py against the commit log; its JSON line is the result."""
        r = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "process",
                                                         "check_wide.py"),
                            "--commit-log", self.commit_log, *args],
                           capture_output=True, text=True, timeout=1200)
        lines = r.stdout.splitlines()
        try:
            result = json.loads(lines[0])
        except (IndexError, ValueError):
            result = {}
        if r.returncode != 0:
            self.violations.append("check_wide: " + " | ".join(lines[1:6] or [r.stderr[-500:]]))
        return {"check": result}

    def event_counts(self):
        counts = {}
        for number, what in ((921, "process_died"), (954, "disk_full_stopped"),
                             (955, "disk_full_resumed"), (741, "resynchronized"),
                             (941, "connection_lost")):
            r = self.rdfcom("events", "--json", "--number", str(number), timeout=120)
            counts[what] = len([l for l in r.stdout.splitlines() if l.strip()])
        return counts

    def summary(self, minutes, mode, result):
        rec = {}
        for k, v in self.recovery.items():
            if v:
                rec[k] = {"n": len(v), "p50_s": round(statistics.median(v), 2),
                          "max_s": round(max(v), 2)}
        return {"chaos": True, "seed": self.seed, "minutes": minutes, "mode": mode,
                "workload": self.workload,
                "rate_txn_per_s": self.rate, "faults": self.faults,
                "faults_total": sum(self.faults.values()), "recovery": rec, **result,
                "growth_crashes": self.growth_crashes(),
                "failed_syncs_noted": {n: self.failed_syncs(n) for n in ("primary", "backup")},
                "events": self.event_counts(),
                "violations": len(self.violations), "violation_list": self.violations}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--mode", choices=["drain", "takeover", "both"], default="both",
                    help="how the campaign ends; both: one campaign of each (each --minutes/2)")
    ap.add_argument("--rate", type=int, default=300, help="transactions/s offered")
    ap.add_argument("--workload", choices=["wide", "insert"], default="wide",
                    help="rdf-load --mode wide (default) or the insert-mode load")
    ap.add_argument("--kinds", help=f"comma-separated fault kinds to use (default: all of "
                    f"{','.join(KINDS)})")
    a = ap.parse_args()
    only = a.kinds.split(",") if a.kinds else None
    if only and any(k not in KINDS for k in only):
        ap.error(f"--kinds: choose from {','.join(KINDS)}")
    modes = ["drain", "takeover"] if a.mode == "both" else [a.mode]
    minutes = a.minutes / len(modes)
    summaries = []
    for i, mode in enumerate(modes):
        c = Campaign(a.seed + i, a.rate, a.workload)
        try:
            log(f"seed {a.seed + i}, {minutes:g} minutes, mode {mode}, {a.rate} txn/s, "
                f"work {c.work}")
            result = c.run(minutes, mode, only)
            summaries.append(c.summary(minutes, mode, result))
        finally:
            c.cleanup()
    for s in summaries:
        print(json.dumps(s))
    total = sum(s["violations"] for s in summaries)
    print(json.dumps({"chaos_total": True, "campaigns": len(summaries),
                      "faults": sum(s["faults_total"] for s in summaries),
                      "violations": total}))
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
