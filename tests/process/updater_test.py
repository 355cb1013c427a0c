#!/usr/bin/env python3
"""Updaters (REDO) with the real binaries on loopback: after a mixed load
with aborts drains, every protected file on the backup equals the
primary's, compared with LMDB's own mdb_dump (bookkeeping databases
excluded), also when updaters are killed with SIGKILL during the load."""

import os
import random
import time
import unittest

import rdftest
from ship_test import ShipSystem

VOLUMES = ["$DATA01", "$DATA02", "$DATA03", "$DATA04"]


class UpdaterTest(unittest.TestCase):
    def setUp(self):
        self.sys = ShipSystem()
        for name in ["receiver", "extractor"] + [f"updater-{v}" for v in VOLUMES]:
            self.sys.start(name)

    def tearDown(self):
        self.sys.cleanup()

    def load(self, txns):
        return rdftest.Process([rdftest.binary("rdf-load"), "--config", self.sys.cfg,
                                "--txns", str(txns), "--mode", "mixed", "--keys", "3000",
                                "--rows-per-txn", "4", "--abort-percent", "15",
                                "--clients", "4", "--quiet"],
                               log_path=os.path.join(self.sys.work, "load.log"))

    def wait_applied(self):
        self.sys.wait_drained()
        sp = rdftest.status(self.sys.backup, "receiver")["save_point_asn"]
        for v in VOLUMES:
            trail = v.lstrip("$")
            rdftest.wait_for(lambda: (rdftest.status(self.sys.backup, f"updater-{trail}") or {})
                             .get("applied_asn", 0) >= sp, 60, f"updater {v} to apply through {sp}")

    def assertBackupEqualsPrimary(self):
        prim = rdftest.volume_dirs(self.sys.primary)
        back = rdftest.volume_dirs(self.sys.backup)
        for v in VOLUMES:
            p, b = rdftest.user_files(prim[v]), rdftest.user_files(back[v])
            self.assertEqual(sorted(p), sorted(b), f"files of {v}")
            for f in p:
                self.assertEqual(len(p[f]), len(b[f]), f"record count of {v}/{f}")
                self.assertEqual(p[f], b[f], f"records of {v}/{f}")
            self.assertGreater(sum(len(x) for x in p.values()), 0)

    def test_mixed_load_with_aborts_drains_to_equal_volumes(self):
        self.assertEqual(self.load(3000).wait(300), 0)
        self.wait_applied()
        self.assertBackupEqualsPrimary()
        st = rdftest.status(self.sys.backup, "updater-DATA01")
        self.assertEqual(st["state"], "RUNNING")
        self.assertEqual(st["rtd_ms"], 0)

    def test_sigkill_of_updaters_20_times_still_equal_after_draining(self):
        rng = random.Random(11)
        load = self.load(20000)
        for _ in range(20):
            time.sleep(rng.uniform(0.1, 0.5))
            victim = f"updater-{rng.choice(VOLUMES)}"
            self.sys.kill(victim)
            time.sleep(rng.uniform(0.0, 0.2))
            self.sys.start(victim)
        self.assertEqual(load.wait(300), 0)
        self.wait_applied()
        self.assertBackupEqualsPrimary()
        # Exactly once: nothing applied twice means no error 10/11 skips.
        skipped = [e for e in rdftest.events(self.sys.cfg, "backup")
                   if e["number"] in (961, 962)]
        self.assertEqual(skipped, [])


if __name__ == "__main__":
    unittest.main()
