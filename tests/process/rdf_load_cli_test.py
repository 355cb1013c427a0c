#!/usr/bin/env python3
"""rdf-load as a command: usage errors exit 2, --help exits 0, a bad
configuration exits 1 naming the problem, and a run prints one JSON summary
line with the documented fields, whose records mdb_dump then finds."""

import json
import os
import subprocess
import unittest

import rdftest


def run(*args, timeout=120):
    return subprocess.run([rdftest.binary("rdf-load"), *args], capture_output=True,
                          text=True, timeout=timeout)


class RdfLoadCliTest(unittest.TestCase):
    def setUp(self):
        self.work, self.cfg = rdftest.fresh_system()

    def tearDown(self):
        rdftest.remove(self.work)

    def test_help_exits_zero_with_usage(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: rdf-load", r.stdout)
        self.assertIn("--rows-per-txn", r.stdout)

    def test_bad_arguments_exit_two_with_usage(self):
        for args in (["--config", self.cfg, "--mode", "bogus"],
                     ["--config", self.cfg, "--txns", "-3"],
                     ["--config", self.cfg, "--no-such-flag"],
                     ["--txns", "10"]):
            r = run(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("usage: rdf-load", r.stderr)

    def test_bad_configuration_exits_one_naming_file_and_line(self):
        bad = os.path.join(self.work, "bad.textproto")
        with open(bad, "w") as f:
            f.write('system: "x"\nbogus_field: 1\n')
        r = run("--config", bad, "--txns", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.textproto:2", r.stderr)

    def test_run_prints_summary_and_records_are_in_the_volumes(self):
        log = os.path.join(self.work, "commits.log")
        r = run("--config", self.cfg, "--txns", "200", "--rows-per-txn", "4", "--clients", "2",
                "--abort-percent", "20", "--commit-log", log, "--seed", "7")
        self.assertEqual(r.returncode, 0, r.stderr)
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        for field in ("committed", "aborted", "rows", "seconds", "txn_per_s", "rows_per_s",
                      "commit_p50_us", "commit_p99_us", "fsyncs_per_commit"):
            self.assertIn(field, summary)
        self.assertEqual(summary["committed"] + summary["aborted"], 200)
        self.assertEqual(summary["rows"], 4 * summary["committed"])
        self.assertGreater(summary["aborted"], 0)
        # Reopen (recovery) so every commit is in LMDB, then count.
        self.assertEqual(run("--config", self.cfg, "--txns", "0").returncode, 0)
        present, problems = rdftest.check_insert_transactions(
            os.path.join(self.work, "primary"), 4)
        self.assertEqual(problems, [])
        self.assertEqual(present, rdftest.read_commit_log(log))

    def test_upsert_and_mixed_modes_run(self):
        for mode in ("upsert", "mixed"):
            r = run("--config", self.cfg, "--txns", "100", "--mode", mode, "--keys", "50",
                    "--clients", "3")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout.splitlines()[-1])["committed"], 100)

    def test_second_process_on_the_same_primary_is_refused(self):
        p = rdftest.Process([rdftest.binary("rdf-load"), "--config", self.cfg, "--seconds", "5",
                             "--rate", "100", "--quiet"])
        try:
            import time
            time.sleep(1)
            r = run("--config", self.cfg, "--txns", "1")
            self.assertEqual(r.returncode, 1)
            self.assertIn("already running", r.stderr)
        finally:
            p.kill()


if __name__ == "__main__":
    unittest.main()
