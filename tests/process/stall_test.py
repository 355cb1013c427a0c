#!/usr/bin/env python3
"""Honest status with the real binaries (docs/architecture.md, invariant 8, event 995):
a stage whose position stands while work waits for it is shown STALLED in
`rdfcom status --json` within 15 s, with the reason, the node not NORMAL and
the metric set, and the row clears (event 996) once the stall does.

  - a receiver that is SIGSTOPped: the extractor, whose batches nobody
    acknowledges (its own state still says RUNNING);
  - an updater whose volume's disk is full (as root: the backup's volumes
    on a small file system of their own): it retries a storage error.
"""

import os
import shutil
import signal
import subprocess
import time
import unittest

import rdftest
from rdftest import MonitorSystem


class StallTest(unittest.TestCase):
    def setUp(self):
        # A SIGSTOPped receiver is also HUNG: never killed here, so that the
        # stall and its end are what is seen.
        self.sys = MonitorSystem({"monitor.hung_restart_after_ms": 0})
        self.addCleanup(self.sys.cleanup)

    def load(self, seconds, rate=200):
        return self.sys.load(0, extra=["--seconds", str(seconds), "--rate", str(rate)])

    def row(self, s, name):
        if name == "extractor":
            return s["extractor"]
        return next(u for u in s["updaters"] if u["name"] == name)

    def wait_row(self, name, pred, timeout, what):
        def check():
            s = self.sys.status()
            return s if s and pred(self.row(s, name)) else None
        return rdftest.wait_for(check, timeout, what)

    def test_extractor_whose_batches_nobody_acknowledges_is_stalled_then_clears(self):
        self.sys.start()
        self.load(60)
        rcv = self.sys.status()["receiver"]["pid"]
        os.kill(rcv, signal.SIGSTOP)
        self.addCleanup(lambda: os.path.exists(f"/proc/{rcv}") and os.kill(rcv, signal.SIGCONT))
        stopped = time.time()
        s = self.wait_row("extractor", lambda r: r["state"] == "STALLED", 20,
                          "the extractor shown STALLED")
        self.assertLess(time.time() - stopped, 15 + 2)
        e = s["extractor"]
        self.assertIn("the backup has confirmed through ASN", e["last_error"])
        self.assertGreaterEqual(e["stalled_ms"], 10000)
        self.assertNotEqual(s["primary"]["state"], "NORMAL")
        self.assertNotEqual(s["state"], "NORMAL")
        stalled = rdftest.events(self.sys.cfg, "primary", 995)
        self.assertEqual([x["fields"]["process"] for x in stalled], ["extractor"])
        os.kill(rcv, signal.SIGCONT)
        self.wait_row("extractor", lambda r: r["state"] != "STALLED", 15,
                      "the extractor no longer STALLED")
        rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "primary", 996), 10, "event 996")
        self.assertEqual(len(rdftest.events(self.sys.cfg, "primary", 995)), 1)

    @unittest.skipUnless(os.geteuid() == 0, "a file system of its own needs root")
    def test_updater_that_retries_a_full_disk_is_stalled_then_clears(self):
        volumes = os.path.join(self.sys.backup, "volumes")
        disk = rdftest.LoopDisk(self.sys.work, volumes, size=96 << 20)
        self.addCleanup(disk.remove)
        self.sys.start()
        filler = os.path.join(volumes, "filler")
        # Fill the volumes' disk, leaving almost nothing, then load.
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=200"],
                       capture_output=True)
        load = self.sys.load(0, extra=["--seconds", "60", "--rate", "400",
                                       "--value-bytes", "2000"])
        s = rdftest.wait_for(
            lambda: (lambda st: st if st and any(u["state"] == "STALLED" for u in st["updaters"])
                     else None)(self.sys.status()), 40, "an updater shown STALLED")
        u = next(u for u in s["updaters"] if u["state"] == "STALLED")
        self.assertIn("applied through ASN", u["last_error"])
        self.assertGreater(u["backlog_records"], 0)
        self.assertNotEqual(s["backup"]["state"], "NORMAL")
        os.remove(filler)
        self.wait_row(u["name"], lambda r: r["state"] != "STALLED", 30,
                      f"{u['name']} no longer STALLED")
        load.stop()


if __name__ == "__main__":
    unittest.main()
