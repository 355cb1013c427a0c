#!/usr/bin/env python3
"""Takeover with the real binaries on loopback: the whole primary process
set is killed with SIGKILL mid-load (insert mode), then `rdfcom takeover`
makes the backup transaction-consistent: every transaction on it is whole,
every transaction whose COMMIT reached a save point is there, no lost
transaction has any record, and the report lists the lost ones. A takeover
killed midway and issued again gives the same result as one that ran
straight through; afterwards the old primary's extractor is refused and tmf
opens the backup as a primary with transaction ids above every id seen."""

import json
import os
import random
import shutil
import subprocess
import time
import unittest

import rdftest
from rdftest import K, ShipSystem, rdfcom_takeover

VOLUMES = ["$DATA01", "$DATA02", "$DATA03", "$DATA04"]


class TakeoverTest(unittest.TestCase):
    def setUp(self):
        # Small updater batches: many LMDB transactions, so kills land
        # between them (the smallest where the undo pass itself is killed).
        batch = 2 if "reissued" in self._testMethodName else 64
        self.sys = ShipSystem(extra={"updater.batch_records": batch})
        self.commit_log = os.path.join(self.sys.work, "commits.log")

    def tearDown(self):
        self.sys.cleanup()

    def load_then_kill_primary(self, txns, min_asn):
        """Runs an insert-mode load and, once the backup's save point passed
        min_asn, kills the primary's process set (rdf-load with tmf, and the
        extractor) with SIGKILL."""
        # Think time keeps transactions open while others commit, so the
        # backup holds transactions without an outcome when the primary dies.
        load = self.sys.load(txns, clients=8, extra=["--mode", "insert", "--think-us", "300",
                                                     "--commit-log", self.commit_log])
        rdftest.wait_for(lambda: (rdftest.status(self.sys.backup, "receiver") or {})
                         .get("save_point_asn", 0) > min_asn, 120,
                         f"the save point to pass ASN {min_asn}")
        # The primary must die in the middle of its load (transactions open),
        # not after it ended: `txns` is far more than it commits by then.
        self.assertIsNone(load.p.poll(), "the load ended before the primary was killed")
        load.kill()
        self.sys.kill("extractor")

    def final_save_point(self):
        mit = rdftest.image_records(self.sys.backup, "MIT")
        sps = [r["savepoint"] for r in mit if r.get("type") == "SAVEPOINT"]
        return mit, sps[-1]

    def check_backup(self, report):
        mit, sp = self.final_save_point()
        self.assertEqual(sp.get("takeover_epoch"), report["epoch"])
        self.assertEqual(report["last_asn"], sp["asn"])
        present, problems = rdftest.check_insert_transactions(self.sys.backup, K)
        self.assertEqual(problems, [], "every transaction on the backup is whole")
        commits = {r["txid"] for r in mit if r.get("type") == "COMMIT" and r["asn"] <= sp["asn"]}
        self.assertEqual(present, commits,
                         "exactly the transactions whose COMMIT reached the save point")
        lost = {t["txid"]: t["records"] for t in report["lost_transactions"]}
        self.assertFalse(set(lost) & present, "no lost transaction has a record")
        self.assertEqual(set(lost), {o["txid"] for o in sp.get("open", [])})
        # Every transaction the primary reported committed and whose COMMIT
        # was saved is present; the others are lost or never arrived.
        committed = rdftest.read_commit_log(self.commit_log)
        self.assertTrue(committed & present)
        self.assertFalse((committed - present) & commits)
        # The records undone are exactly the lost transactions' DATA records.
        data = 0
        for v in VOLUMES:
            data += sum(1 for r in rdftest.image_records(self.sys.backup, v)
                        if r.get("type") == "DATA" and r["txid"] in lost)
        self.assertEqual(report["undone_records"], data)
        self.assertEqual(sum(lost.values()), data)
        return present

    def test_takeover_after_sigkill_of_the_primary_set_mid_load(self):
        for name in ["receiver", "extractor"] + [f"updater-{v}" for v in VOLUMES]:
            self.sys.start(name)
        self.load_then_kill_primary(400000, 20000)
        time.sleep(0.5)
        # tmf refuses the backup before takeover.
        r = subprocess.run([rdftest.binary("rdf-load"), "--config", self.sys.cfg,
                            "--node", "backup", "--txns", "1"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is a backup", r.stderr)

        rc, report, err = rdfcom_takeover(self.sys.cfg,
                                          log=os.path.join(self.sys.work, "takeover.log"))
        self.assertEqual(rc, 0, err)
        present = self.check_backup(report)
        self.assertGreater(len(present), 100)
        self.assertGreater(len(report["lost_transactions"]), 0)
        with open(os.path.join(self.sys.backup, "takeover", "report.json")) as f:
            self.assertEqual(json.load(f), report)
        with open(os.path.join(self.sys.backup, "takeover", "report.txt")) as f:
            text = f.read()
        self.assertIn(f"last ASN received        {report['last_asn']}", text)
        for t in report["lost_transactions"]:
            self.assertIn(str(t["txid"]), text)
        numbers = [e["number"] for e in rdftest.events(self.sys.cfg, "backup")]
        for n in (970, 724, 735):
            self.assertIn(n, numbers)
        if report["lost_transactions"]:
            self.assertIn(971, numbers)

        # The old primary's extractor is refused.
        self.sys.start("extractor")
        rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 956), 30,
                         "event 956 (audit refused after takeover)")
        rdftest.wait_for(lambda: (rdftest.status(self.sys.primary, "extractor") or {})
                         .get("state") == "FENCED", 30, "the extractor to show FENCED")
        self.sys.kill("extractor")
        self.sys.stop_all()

        # tmf opens the backup as a primary; new ids are above every id seen.
        new_log = os.path.join(self.sys.work, "new-primary-commits.log")
        r = subprocess.run([rdftest.binary("rdf-load"), "--config", self.sys.cfg,
                            "--node", "backup", "--txns", "20", "--commit-log", new_log,
                            "--quiet"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        new = rdftest.read_commit_log(new_log)
        self.assertEqual(len(new), 20)
        self.assertGreater(min(new), report["max_txid"])
        self.assertTrue(rdftest.events(self.sys.cfg, "backup", 936))
        self.assertGreaterEqual(report["max_txid"], max(present))

    def test_takeover_killed_midway_and_reissued_gives_the_same_result(self):
        # Updaters not running: takeover has the whole backlog to apply.
        self.sys.start("receiver")
        self.sys.start("extractor")
        self.load_then_kill_primary(300000, 15000)
        self.sys.stop_all()
        # A copy of the backup that takes over straight through, for reference.
        ref_work = self.sys.work + ".ref"
        shutil.copytree(self.sys.work, ref_work, symlinks=True)
        try:
            ref_cfg = os.path.join(ref_work, os.path.basename(self.sys.cfg))
            rc, ref, err = rdfcom_takeover(ref_cfg)
            self.assertEqual(rc, 0, err)
            self.assertGreater(len(ref["lost_transactions"]), 0)

            log = os.path.join(self.sys.work, "takeover.log")
            self.sys.start("receiver")  # a running receiver fixes the final save point
            # 1. The updaters die during REDO.
            rc, _, err = rdfcom_takeover(self.sys.cfg, {"RDF_TEST_POINTS": "updater.after_commit@7"},
                                         log=log)
            self.assertEqual(rc, 1)
            self.assertIn("issue the takeover again", err)
            # 2. The updaters die during UNDO (or right after its last commit).
            rc, _, err = rdfcom_takeover(self.sys.cfg, {"RDF_TEST_POINTS": "updater.after_undo_commit@1"},
                                         log=log)
            self.assertEqual(rc, 1, err)
            # 3. The takeover itself is killed (its updaters die with it).
            rng = random.Random(5)
            p = rdftest.Process([rdftest.binary("rdfcom"), "--config", self.sys.cfg, "takeover",
                                 "--yes"], log_path=log)
            time.sleep(rng.uniform(0.05, 0.3))
            p.kill()
            # 4. Issued again, it finishes.
            rc, report, err = rdfcom_takeover(self.sys.cfg, log=log)
            self.assertEqual(rc, 0, err)
            numbers = [e["number"] for e in rdftest.events(self.sys.cfg, "backup")]
            self.assertIn(725, numbers)
            self.assertIn(726, numbers)
            self.check_backup(report)
            for key in ("epoch", "last_asn", "lost_transactions", "undone_records", "max_txid"):
                self.assertEqual(report[key], ref[key], key)
            for v in VOLUMES:
                mine = rdftest.user_files(rdftest.volume_dirs(self.sys.backup)[v])
                theirs = rdftest.user_files(rdftest.volume_dirs(os.path.join(ref_work, "backup"))[v])
                self.assertEqual(mine, theirs, f"volume {v}")
            # 5. Issued once more, it prints the same report.
            rc, again, err = rdfcom_takeover(self.sys.cfg)
            self.assertEqual(rc, 0, err)
            self.assertEqual(again, report)
        finally:
            if not os.environ.get("RDF_KEEP"):
                rdftest.remove(ref_work)

    def test_takeover_with_an_updater_stuck_on_a_damaged_trail_fails_then_resumes(self):
        # The pipeline received a load; no updater ran, so takeover's must
        # read each volume trail from its start.
        self.sys.start("receiver")
        self.sys.start("extractor")
        self.load_then_kill_primary(300000, 15000)
        self.sys.stop_all()
        # A running receiver fixes the final save point (started before the
        # damage: it reads no old segment again).
        self.sys.start("receiver")
        rdftest.wait_for(lambda: rdftest.lock_holder(self.sys.backup, "receiver") > 0, 30,
                         "the receiver to start")
        time.sleep(1)
        # Damage in the middle of $DATA01's first segment: its updater stops
        # there (kDataLoss) and cannot get past it while the damage lasts.
        # (A payload byte of the middle DATA record: its frame's CRC32C fails.)
        seg = rdftest.trail_segments(os.path.join(self.sys.backup, "imagetrails"), "DATA01")[0]
        recs = [r for r in rdftest.image_records(self.sys.backup, "DATA01")
                if r["segment"] == seg["segment"] and r.get("type") == "DATA"]
        self.assertGreater(len(recs), 100)
        offset = recs[len(recs) // 2]["offset"] + 24
        with open(seg["path"], "r+b") as f:
            f.seek(offset)
            good = f.read(1)
            f.seek(offset)
            f.write(bytes([good[0] ^ 0x5a]))
        with self.assertRaises(rdftest.TrailDamage):
            rdftest.image_records(self.sys.backup, "DATA01")
        log = os.path.join(self.sys.work, "takeover.log")
        started = time.monotonic()
        # Bounded: without a bound on the updaters this would never return.
        rc, _, err = rdfcom_takeover(self.sys.cfg, log=log, extra=["--timeout", "5"],
                                     timeout=120)
        self.assertEqual(rc, 1, err)
        self.assertLess(time.monotonic() - started, 100)
        self.assertIn("$DATA01", err)
        self.assertIn("issue the takeover again", err)
        failed = rdftest.events(self.sys.cfg, "backup", 725)
        self.assertEqual(len(failed), 1)
        self.assertIn("$DATA01", failed[0]["fields"]["failed_updaters"])
        self.assertIn("$DATA01", failed[0]["fields"]["error"])
        per_volume = {e["fields"]["volume"]: e for e in rdftest.events(self.sys.cfg, "backup", 726)}
        self.assertEqual(set(per_volume), {"$DATA01"})  # the others finished
        self.assertTrue(per_volume["$DATA01"]["fields"]["error"])
        self.assertEqual(rdftest.lock_holder(self.sys.backup, "updater-DATA01"), 0,
                         "the stuck updater was stopped")
        self.assertFalse(os.path.exists(os.path.join(self.sys.backup, "takeover", "report.json")))
        # The damage repaired, the takeover issued again resumes and completes.
        with open(seg["path"], "r+b") as f:
            f.seek(offset)
            f.write(good)
        rc, report, err = rdfcom_takeover(self.sys.cfg, log=log)
        self.assertEqual(rc, 0, err)
        self.check_backup(report)
        self.assertTrue(rdftest.events(self.sys.cfg, "backup", 724))


if __name__ == "__main__":
    unittest.main()
