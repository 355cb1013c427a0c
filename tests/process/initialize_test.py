#!/usr/bin/env python3
"""rdfcom initialize, the online initial copy, with the real binaries on
loopback: a system with a monitor per node is loaded, its process sets are
stopped (`rdfcom stop`: the monitors stay), and while rdf-load keeps
committing on the primary, with a long transaction open across the copy,
`rdfcom initialize --yes` copies the primary's volumes to the backup. Then
`rdfcom start`, the load ends, `rdfcom stop --drain`, and both nodes must be
equal (`rdfcom verify`, check_volumes.py --compare) with no exception: the
records of transactions already in the copy were skipped, those of the
transactions open across it were applied, nothing twice, nothing missing.
The copy streams through the monitors' control ports: the main case runs
rdfcom from a copy of the configuration in another folder, where the data
directories it names do not exist, so nothing can go through local files.
Also: a copy of an idle primary drains at once; a takeover after a copy
undoes the transaction that was open across it and leaves a backup that tmf
opens as a primary; initialize refuses while the process sets run, without
--yes off a terminal, and without monitors where the data directories are
not local; a backup monitor SIGKILLed mid-copy fails the copy cleanly (the
primary's pin restored) and a rerun succeeds."""

import json
import os
import shutil
import signal
import subprocess
import time
import unittest

import rdftest
from rdftest import MonitorSystem

K = 5
CHECK_VOLUMES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_volumes.py")


def read(path):
    with open(path) as f:
        return f.read()


class InitializeTest(unittest.TestCase):
    def setUp(self):
        self.sys = MonitorSystem()
        self.addCleanup(self.sys.cleanup)
        self.commit_log = os.path.join(self.sys.work, "commits.log")

    def bg_load(self, extra):
        p = rdftest.Process([rdftest.binary("rdf-load"), "--config", self.sys.cfg,
                             "--rows-per-txn", str(K), "--clients", "4", "--quiet",
                             "--commit-log", self.commit_log, *extra],
                            log_path=os.path.join(self.sys.work, "bg-load.log"))
        self.sys.others.append(p)
        return p

    def initialize_under_load_with_a_transaction_open(self):
        """Both nodes loaded and stopped; then initialize while a load runs
        whose client 0 keeps its first transaction open for far longer than
        the test. Returns (the load, initialize's state)."""
        self.sys.start()
        self.assertEqual(self.sys.load(800).wait(180), 0)
        self.sys.rdfcom("stop", check=True)
        load = self.bg_load(("--mode", "insert", "--txns", "100000", "--rate", "200",
                             "--hold-us", "600000000", "--think-us", "2000"))
        self.wait_for_commits(200)
        return load, self.initialize()

    def wait_for_commits(self, n):
        rdftest.wait_for(lambda: len(rdftest.read_commit_log(self.commit_log)) >= n, 60,
                         f"{n} commits of the load")

    def operator_config(self):
        """The configuration and the node key files copied to another folder:
        its relative data directories name folders that do not exist there."""
        folder = os.path.join(self.sys.work, "operator")
        os.makedirs(folder, exist_ok=True)
        shutil.copytree(os.path.join(self.sys.work, "keys"), os.path.join(folder, "keys"),
                        dirs_exist_ok=True)
        cfg = os.path.join(folder, "rdf.textproto")
        shutil.copy(self.sys.cfg, cfg)
        for node in ("primary", "backup"):
            self.assertFalse(os.path.exists(os.path.join(folder, node)))
        return cfg

    def initialize(self, cfg=None):
        r = subprocess.run([rdftest.binary("rdfcom"), "--config", cfg or self.sys.cfg,
                            "initialize", "--yes", "--json"],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Through the monitors, never through local files.
        self.assertIn("snapshots taken and audit scanned", r.stderr)
        self.assertNotIn("local files", r.stderr)
        state = json.loads(r.stdout)
        print(r.stderr, end="")
        return state

    def assert_state(self, state):
        """The state file says the same, and the copy began inside the audit
        kept: a transaction open across the copy put the start ASN before
        every volume's snapshot."""
        with open(os.path.join(self.sys.backup, "initialize", "state.json")) as f:
            self.assertEqual(json.load(f), state)
        self.assertFalse(os.path.exists(os.path.join(self.sys.backup, "initialize",
                                                     "in_progress")))
        vols = state["volumes"]
        self.assertEqual(sorted(v["volume"] for v in vols),
                         ["$DATA01", "$DATA02", "$DATA03", "$DATA04"])
        print("initial copy:", {v["volume"]: (v["tmf_applied_asn"], v["snapshot_asn"],
                                              v["open_txids"]) for v in vols},
              "start", state["start_asn"])
        self.assertLess(state["start_asn"], min(v["tmf_applied_asn"] for v in vols))
        self.assertLess(state["start_asn"], min(v["snapshot_asn"] for v in vols))
        # The held transaction (--hold-us spreads it over every volume) is
        # open across the copy on every volume.
        self.assertTrue(all(v["open_txids"] for v in vols))
        self.assertTrue(all(v["records"] > 0 for v in vols))
        for v in vols:
            self.assertGreaterEqual(v["snapshot_asn"], v["tmf_applied_asn"])
        # The primary's pin holds the audit from the start ASN.
        with open(os.path.join(self.sys.primary, "audit", "pin")) as f:
            self.assertEqual(int(f.read()), state["start_asn"] - 1)
        events = rdftest.events(self.sys.cfg, "backup", 982)
        self.assertEqual(int(events[-1]["fields"]["asn"]), state["start_asn"])

    def start_drain_and_compare(self, load, state):
        self.sys.rdfcom("start", check=True)
        self.sys.wait_state("NORMAL")
        # The receiver started where the copy left off.
        rdftest.wait_for(lambda: [e for e in rdftest.events(self.sys.cfg, "backup", 876)
                                  if e["fields"].get("initial_copy_start_asn") ==
                                  str(state["start_asn"])],
                         20, "the receiver to start from the initial copy's start ASN")
        # verify while the load commits and the backup catches up: never a
        # verdict across a moving target (exit 3, no consistent cut).
        moving = load.p.poll() is None
        v = self.sys.rdfcom("verify", "--json", timeout=300)
        if moving and load.p.poll() is None:
            print("verify during the load:", v.stdout.strip()[:300])
            self.assertEqual(v.returncode, 3, v.stdout + v.stderr)
            result = json.loads(v.stdout)
            self.assertFalse(result["consistent_cut"])
            self.assertFalse(result["equal"])
            self.assertTrue(result["cut_problem"])
        self.assertEqual(load.wait(300), 0)
        r = self.sys.rdfcom("stop", "--drain", timeout=660)
        self.assertEqual(r.returncode, 0, r.stderr)
        v = self.sys.rdfcom("verify", timeout=300)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertEqual(subprocess.run(["python3", CHECK_VOLUMES, "--compare",
                                         self.sys.primary, self.sys.backup]).returncode, 0)
        ex = self.sys.rdfcom("exceptions", "--json", check=True)
        self.assertEqual(ex.stdout.strip(), "", "the updaters logged exceptions")

    def test_copy_while_inserting_with_a_transaction_open_across_it(self):
        # Without monitors, only where both data directories are local files.
        operator = self.operator_config()
        r = subprocess.run([rdftest.binary("rdfcom"), "--config", operator, "initialize",
                            "--yes"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("streams the copy through both nodes' monitors", r.stderr)
        self.assertIn("the monitor of the primary node 'primary' does not answer", r.stderr)
        self.assertIn("rdf-monitor --config FILE --node backup --no-start", r.stderr)
        self.sys.start()
        # Before: a running system refuses, and so does a missing --yes.
        r = self.sys.rdfcom("initialize", "--yes")
        self.assertEqual(r.returncode, 1)
        self.assertIn("rdfcom stop", r.stderr)
        r = self.sys.rdfcom("initialize")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--yes", r.stderr)
        # The primary has data, and so has the backup (which initialize
        # replaces).
        self.assertEqual(self.sys.load(1500).wait(180), 0)
        self.sys.rdfcom("stop", check=True)
        self.assertEqual(self.sys.status()["state"], "STOPPED")
        # Client 0 holds its first transaction open for 12 s; the others
        # keep committing (and aborting) while the copy is taken.
        load = self.bg_load(("--mode", "insert", "--txns", "3000", "--rate", "300",
                             "--hold-us", "12000000", "--think-us", "2000",
                             "--abort-percent", "10"))
        self.wait_for_commits(300)
        # From the operator's folder: only the monitors can do the copy.
        state = self.initialize(operator)
        self.assertIsNone(load.p.poll(), "the load ended before the copy was taken")
        self.assert_state(state)
        self.assertFalse(os.path.exists(os.path.join(self.sys.primary, "initialize",
                                                     "outgoing")))
        self.start_drain_and_compare(load, state)
        present, problems = rdftest.check_insert_transactions(self.sys.backup, K)
        self.assertEqual(problems, [])
        # Every transaction the load committed is there, whole (the commit
        # log has those of the load that ran across the copy).
        committed = rdftest.read_commit_log(self.commit_log)
        self.assertGreater(len(committed), 2000)
        self.assertEqual(committed - present, set())

    def test_copy_while_updating_and_deleting_then_a_second_copy(self):
        self.sys.start()
        self.assertEqual(self.sys.load(800, extra=("--mode", "mixed", "--keys", "2000"))
                         .wait(180), 0)
        self.sys.rdfcom("stop", check=True)
        mixed = ("--mode", "mixed", "--keys", "2000", "--rate", "300", "--hold-us",
                 "10000000", "--think-us", "2000", "--abort-percent", "15")
        load = self.bg_load(("--txns", "2500", *mixed))
        self.wait_for_commits(200)
        first = self.initialize()
        self.assertIsNone(load.p.poll(), "the load ended before the copy was taken")
        self.assert_state(first)
        self.start_drain_and_compare(load, first)
        # A second initial copy over a backup that replicated: stop, copy
        # while loading again, start, drain, equal.
        load = self.bg_load(("--txns", "1500", "--seed", "2", *mixed))
        self.wait_for_commits(len(rdftest.read_commit_log(self.commit_log)) + 200)
        second = self.initialize()
        self.assertEqual(second["number"], first["number"] + 1)
        self.assertGreater(second["start_asn"], first["start_asn"])
        self.assert_state(second)
        self.start_drain_and_compare(load, second)

    def test_copy_of_an_idle_primary_starts_after_its_audit_and_drains_at_once(self):
        self.sys.start()
        self.assertEqual(self.sys.load(500).wait(180), 0)
        self.sys.rdfcom("stop", check=True)
        end = rdftest.audit_records(self.sys.primary)[-1]["asn"]
        state = self.initialize()
        self.assertEqual(state["start_asn"], end + 1)
        for v in state["volumes"]:
            self.assertEqual(v["snapshot_asn"], end)
            self.assertEqual(v["open_txids"], [])
        self.sys.rdfcom("start", check=True)
        self.sys.wait_state("NORMAL")
        # Nothing to ship: the empty image trails count as caught up.
        r = self.sys.rdfcom("stop", "--drain", "--timeout", "60", timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"drained through ASN {end}", r.stdout)
        v = self.sys.rdfcom("verify", timeout=300)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_takeover_after_the_copy_undoes_the_transaction_open_across_it(self):
        load, state = self.initialize_under_load_with_a_transaction_open()
        self.assert_state(state)
        self.sys.rdfcom("start", check=True)
        top = max(v["snapshot_asn"] for v in state["volumes"])
        rdftest.wait_for(lambda: (self.sys.status() or {}).get("receiver", {})
                         .get("save_point_asn", 0) > top + 2000, 120,
                         "the backup to receive well past the copy")
        # The primary dies: its open transactions never get an outcome.
        load.kill()
        # (Only what tmf made durable is shipped: the trail's file may hold more.)
        rdftest.wait_for(lambda: (lambda s: s and s["receiver"]["save_point_asn"] >=
                                  s["primary"]["audit_end_asn"] > top)(self.sys.status()),
                         60, "the rest of the durable audit")
        r = self.sys.rdfcom("takeover", "--yes", "--json", timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("was initialized from a copy", r.stderr)
        report = json.loads(r.stdout)
        lost = {t["txid"] for t in report["lost_transactions"]}
        held = min(min(v["open_txids"]) for v in state["volumes"])
        self.assertIn(held, lost, "the transaction open across the copy was lost")
        self.assertGreater(report["undone_records"], 0)
        present, problems = rdftest.check_insert_transactions(self.sys.backup, K)
        self.assertEqual(problems, [], "every transaction on the backup is whole")
        self.assertFalse(lost & present, "no lost transaction has a record")
        mit = rdftest.image_records(self.sys.backup, "MIT")
        received = {r["txid"] for r in mit if r.get("type") == "COMMIT"}
        committed = rdftest.read_commit_log(self.commit_log)
        self.assertEqual((committed & received) - present, set())
        self.assertEqual(self.sys.rdfcom("exceptions", "--json", check=True).stdout.strip(), "")
        # tmf opens the promoted backup: the copies carry none of the old
        # primary's audit bookkeeping, so its new commits reach the volumes.
        self.sys.rdfcom("stop", check=True)
        new_log = os.path.join(self.sys.work, "new-primary.log")
        r = subprocess.run([rdftest.binary("rdf-load"), "--config", self.sys.cfg, "--node",
                            "backup", "--txns", "50", "--rows-per-txn", str(K), "--quiet",
                            "--commit-log", new_log], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        new = rdftest.read_commit_log(new_log)
        self.assertEqual(len(new), 50)
        after, problems = rdftest.check_insert_transactions(self.sys.backup, K)
        self.assertEqual(problems, [])
        self.assertEqual(new - after, set())


    def test_takeover_while_catching_up_after_the_copy_refuses_unless_forced(self):
        load, state = self.initialize_under_load_with_a_transaction_open()
        # The primary is lost before the backup received anything past the
        # copy: every volume's copy is newer than what the backup holds.
        load.kill()
        r = self.sys.rdfcom("takeover", "--yes", "--json", timeout=300)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("still catching up after `rdfcom initialize`", r.stderr)
        self.assertIn("--force", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.sys.backup, "takeover", "epoch")),
                         "a refused takeover fences nothing")
        r = self.sys.rdfcom("takeover", "--yes", "--json", "--force", timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)
        self.assertTrue(report["forced"])
        snapshots = {v["volume"]: v["snapshot_asn"] for v in state["volumes"]}
        bad = {v["volume"]: v for v in report["inconsistent_volumes"]}
        self.assertEqual(set(bad), {v for v, s in snapshots.items() if s > report["last_asn"]})
        self.assertTrue(bad)
        for volume, v in bad.items():
            self.assertEqual(v["snapshot_asn"], snapshots[volume])
            self.assertEqual(v["last_asn"], report["last_asn"])
        with open(os.path.join(self.sys.backup, "takeover", "report.json")) as f:
            self.assertEqual(json.load(f), report)
        self.assertIn("INCONSISTENT VOLUMES", read(os.path.join(self.sys.backup, "takeover",
                                                                "report.txt")))
        events = rdftest.events(self.sys.cfg, "backup", 987)
        self.assertEqual({e["fields"]["volume"] for e in events}, set(bad))
        self.assertTrue(all(e["severity"] == "ERROR" for e in events))

    def test_backup_monitor_killed_mid_copy_then_a_rerun_succeeds(self):
        self.sys.start()
        self.assertEqual(self.sys.load(800).wait(180), 0)
        self.sys.rdfcom("stop", check=True)
        pin = os.path.join(self.sys.primary, "audit", "pin")
        with open(pin) as f:
            pin_before = f.read()
        # Client 0 holds its first transaction open across both attempts.
        load = self.bg_load(("--mode", "insert", "--txns", "9000", "--rate", "300",
                             "--hold-us", "50000000", "--think-us", "2000"))
        self.wait_for_commits(200)
        # Small chunks with a pause: the copy takes long enough to break.
        env = dict(os.environ, RDF_INITIALIZE_CHUNK_BYTES="4096",
                   RDF_INITIALIZE_CHUNK_PAUSE_MS="40")
        err_path = os.path.join(self.sys.work, "initialize-1.err")
        with open(err_path, "w") as err:
            copy = subprocess.Popen([rdftest.binary("rdfcom"), "--config", self.sys.cfg,
                                     "initialize", "--yes"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=err)
        try:
            rdftest.wait_for(lambda: "MiB of" in read(err_path), 60,
                             "the copy to be streaming")
            self.assertIsNone(copy.poll(), read(err_path))
            # The monitors keep answering while the copy runs.
            s = self.sys.status()
            self.assertTrue(s["primary"]["reachable"])
            self.assertEqual(s["state"], "STOPPED")
            r = self.sys.rdfcom("start")
            self.assertEqual(r.returncode, 1)
            self.assertIn("initial copy", r.stderr)
            backup = self.sys.monitors["backup"]
            os.kill(backup.p.pid, signal.SIGKILL)
            backup.kill()  # (reaps it by its pid, closes its log)
            self.assertEqual(copy.wait(120), 1)
        finally:
            if copy.poll() is None:
                copy.kill()
                copy.wait(10)
        err = read(err_path)
        print(err, end="")
        self.assertIn("initialize failed", err)
        self.assertIn("node 'backup': no answer from its monitor", err)
        self.assertIn("the primary's pin was restored", err)
        self.assertIn("keeps its in-progress mark", err)
        with open(pin) as f:
            self.assertEqual(f.read(), pin_before)
        self.assertFalse(os.path.exists(os.path.join(self.sys.primary, "initialize",
                                                     "outgoing")))
        # The backup keeps the mark: nothing of it starts until a copy is made.
        self.assertTrue(os.path.exists(os.path.join(self.sys.backup, "initialize",
                                                    "in_progress")))
        self.sys.monitors["backup"] = rdftest.Process(
            [rdftest.binary("rdf-monitor"), "--config", self.sys.cfg, "--node", "backup",
             "--no-start"], log_path=os.path.join(self.sys.work, "monitor-backup-2.log"))
        rdftest.wait_for(lambda: (self.sys.status() or {}).get("state") == "STOPPED", 30,
                         "the backup's monitor again")
        self.assertIsNone(load.p.poll(), "the load ended before the second copy")
        state = self.initialize()
        self.assert_state(state)
        self.start_drain_and_compare(load, state)


if __name__ == "__main__":
    unittest.main()
