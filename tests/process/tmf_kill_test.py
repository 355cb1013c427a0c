#!/usr/bin/env python3
"""tmf survives SIGKILL: runs rdf-load (insert mode, 4 clients, some aborts),
kills it with SIGKILL at random moments 20 times, reopening (recovering) the
primary each time, and checks with LMDB's own mdb_dump that every
transaction present has exactly K records and that every transaction in the
commit log is present; then the same after 6 power cuts of the primary's
own file system (ext4 on a loop device, shut down without flushing its
journal), at random moments of the load, with the volumes in each of tmf's
checkpoint modes (a copy every second, and a sync of every apply)."""

import os
import random
import sys
import time
import unittest

import rdftest

K = 5
ROUNDS = 20
POWER_CUTS = 6


def tail(path, n=3000):
    with open(path) as f:
        return f.read()[-n:]


class TmfKillTest(unittest.TestCase):
    def crash_rounds(self, rounds, rng, pause, crash, disk=False, settings=None,
                     rolled_back=False):
        """`rounds` times: rdf-load runs for a random `pause` (seconds, a
        range) and `crash(process)` ends it; then the primary is reopened
        (recovered) with nothing running and checked: every transaction whole
        and every commit in the commit log present. With `disk` the primary's
        data folder is a LoopDisk, passed to `crash` as its second argument;
        the commit log (what the clients were told) stays on this machine's
        disk, and each round runs as after a reboot (its own boot id)."""
        work, cfg = rdftest.fresh_system({"trail.audit_segment_bytes": 1048576,
                                          **(settings or {})})
        def env(boot):
            return dict(os.environ, RDF_TEST_POINTS=f"boot_id={boot}") if disk else None
        log = f"{work}/commits.log"
        loop = None
        try:
            if disk:
                loop = rdftest.LoopDisk(work, f"{work}/primary")
            for round in range(rounds):
                p = rdftest.Process([rdftest.binary("rdf-load"), "--config", cfg,
                                     "--txns", "1000000", "--rows-per-txn", str(K),
                                     "--clients", "4", "--abort-percent", "10",
                                     "--seed", str(round), "--commit-log", log, "--quiet"],
                                    log_path=f"{work}/load.log", env=env(f"boot-{round}"))
                time.sleep(rng.uniform(*pause))
                crash(p, loop)
            r = rdftest.Process([rdftest.binary("rdf-load"), "--config", cfg, "--txns", "0"],
                                log_path=f"{work}/load.log", env=env("boot-final"))
            self.assertEqual(r.wait(120), 0, tail(f"{work}/load.log"))
            committed = rdftest.read_commit_log(log)
            present, problems = rdftest.check_insert_transactions(f"{work}/primary", K)
            self.assertGreater(len(committed), 100)
            self.assertEqual(problems, [])
            self.assertEqual(committed - present, set())
            # With `rolled_back`, the volumes went back to their copies (937).
            self.assertEqual(bool(rdftest.events(cfg, "primary", 937)), rolled_back)
        finally:
            if loop:
                loop.remove()
            rdftest.remove(work)

    def test_sigkill_at_random_moments_loses_no_committed_transaction(self):
        self.crash_rounds(ROUNDS, random.Random(20261125), (0.3, 1.5),
                          lambda p, _: p.kill())

    def power_cuts(self, settings, rolled_back):
        def cut(p, loop):
            self.assertIsNone(p.p.poll(), "the load still runs at the cut")
            loop.cut_power([p])
        self.crash_rounds(POWER_CUTS, random.Random(20261126), (0.5, 2.0), cut, disk=True,
                          settings=settings, rolled_back=rolled_back)

    def test_power_cut_at_random_moments_loses_no_committed_transaction(self):
        self.power_cuts({"tmf.checkpoint_mode": "IN_PLACE"}, rolled_back=False)

    def test_power_cut_in_copy_mode_loses_no_committed_transaction(self):
        # A copy about every second; data.mdb itself is never synced.
        self.power_cuts({"tmf.checkpoint_mode": "COPY", "tmf.checkpoint_copy_ms": 1000},
                        rolled_back=True)


if __name__ == "__main__":
    unittest.main()
