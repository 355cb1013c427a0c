#!/usr/bin/env python3
"""The wide workload (rdf-load --mode wide, tmf/wide_load.h) through the
real pipeline on loopback, checked against its commit log by
check_wide.py: records from 0 bytes to nearly tmf.max_txn_bytes (larger than
a receiver message), aborts on purpose and by deadlock, DDL racing writes,
bursts and idle periods, volumes that start with a 1 MiB LMDB map on both
nodes, and many transactions open at once through every save point, with
every backup process killed and restarted, then a takeover."""

import os
import subprocess
import sys
import time
import unittest

import rdftest
from rdftest import ShipSystem

VOLUMES = ["$DATA01", "$DATA02", "$DATA03", "$DATA04"]
HERE = os.path.dirname(os.path.abspath(__file__))
MAX_TXN = 8 << 20


def check_wide(args):
    r = subprocess.run([sys.executable, os.path.join(HERE, "check_wide.py"), *args],
                       capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout + r.stderr


class WideTest(unittest.TestCase):
    def setUp(self):
        self.sys = ShipSystem(extra={"tmf.max_txn_bytes": MAX_TXN,
                                     "lmdb.map_bytes": 1 << 20,
                                     "tmf.lock_timeout_ms": 500})
        self.log = os.path.join(self.sys.work, "commits.log")

    def tearDown(self):
        self.sys.cleanup()

    def start_backup(self):
        self.sys.start("receiver")
        for v in VOLUMES:
            self.sys.start(f"updater-{v}")

    def wide(self, seconds, extra=()):
        return rdftest.Process(
            [rdftest.binary("rdf-load"), "--config", self.sys.cfg, "--mode", "wide",
             "--seconds", str(seconds), "--quiet", "--commit-log", self.log, *extra],
            log_path=os.path.join(self.sys.work, "load.log"))

    def wait_applied(self, timeout=300):
        """Until every updater has applied through the receiver's save point
        and that covers the primary's audit."""
        self.sys.wait_drained(timeout)

        def applied():
            sp = (rdftest.status(self.sys.backup, "receiver") or {}).get("save_point_asn", 0)
            return all((rdftest.status(self.sys.backup, f"updater-{v.lstrip('$')}") or {})
                       .get("applied_asn", 0) >= sp for v in VOLUMES)
        rdftest.wait_for(applied, timeout, "every updater to apply through the save point")

    def test_wide_workload_drains_and_both_nodes_equal_the_model(self):
        self.start_backup()
        self.sys.start("extractor")
        load = self.wide(25, ["--clients", "4", "--max-value-bytes", str(MAX_TXN - (64 << 10)),
                              "--abort-percent", "5", "--ddl", "--open-txns", "200",
                              "--hold-ms", "2000", "--burst-ms", "4000", "--idle-ms", "1500",
                              "--seed", "11"])
        self.assertEqual(load.wait(240), 0)
        self.wait_applied()
        self.sys.stop_all()
        rc, out = check_wide(["--commit-log", self.log, "--node", self.sys.primary,
                              "--node", self.sys.backup, "--drained"])
        self.assertEqual(rc, 0, out)

    def test_ten_thousand_open_transactions_restarts_and_takeover(self):
        self.start_backup()
        self.sys.start("extractor")
        load = self.wide(600, ["--clients", "2", "--max-value-bytes", "4096",
                               "--open-txns", "10000", "--hold-ms", "15000", "--seed", "12"])
        # Once 10,000 are open together and a save point holds them all,
        # every backup process is killed and started again.
        def many_open():
            sp = (rdftest.status(self.sys.backup, "receiver") or {}).get("save_point_asn", 0)
            return sp > 12000
        rdftest.wait_for(many_open, 240, "a save point past 10,000 open transactions")
        for name in ["receiver"] + [f"updater-{v}" for v in VOLUMES]:
            self.sys.kill(name)
        time.sleep(1)
        self.start_backup()
        time.sleep(5)
        self.assertIsNone(load.p.poll(), "the load ended before the primary was killed")
        load.kill()
        self.sys.kill("extractor")
        from takeover_test import rdfcom_takeover
        rc, report, err = rdfcom_takeover(self.sys.cfg,
                                          log=os.path.join(self.sys.work, "takeover.log"))
        self.assertEqual(rc, 0, err)
        self.assertGreaterEqual(len(report["lost_transactions"]), 5000)
        rc, out = check_wide(["--commit-log", self.log, "--node", self.sys.backup, "--takeover"])
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()
