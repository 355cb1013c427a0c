#!/usr/bin/env python3
"""rdfcom keygen and events as commands: keygen writes one 0600 key file per
node and their public keys into the configuration (which still loads),
refuses to overwrite key files without --force, and `rdfcom events --json`
prints one JSON object per line, including rdf-load's "recovery complete"
event (934)."""

import json
import os
import re
import stat
import subprocess
import unittest

import rdftest


def rdfcom(*args, timeout=60):
    return subprocess.run([rdftest.binary("rdfcom"), *args], capture_output=True, text=True,
                          timeout=timeout)


def key_files(work):
    return {name: os.path.join(work, "keys", f"{name}.key") for name in ("primary", "backup")}


def configured_public_keys(cfg):
    """{node name: public_key} from the text, in node order."""
    with open(cfg) as f:
        text = f.read()
    keys = {}
    for block in re.findall(r"^nodes \{(.*?)^\}", text, re.S | re.M):
        name = re.search(r'^\s*name:\s*"([^"]*)"', block, re.M).group(1)
        m = re.search(r'^\s*public_key:\s*"([^"]*)"', block, re.M)
        keys[name] = m.group(1) if m else ""
    return keys


def key_file_public_key(path):
    with open(path) as f:
        return re.search(r"^public-key = (\S+)$", f.read(), re.M).group(1)


class RdfcomKeygenTest(unittest.TestCase):
    def setUp(self):
        self.work, self.cfg = rdftest.fresh_system()

    def tearDown(self):
        rdftest.remove(self.work)

    def keygen(self, *extra):
        return rdfcom("--config", self.cfg, "keygen", *extra)

    def test_keygen_writes_private_key_files_and_public_keys(self):
        with open(self.cfg) as f:
            before = f.read()
        r = self.keygen()
        self.assertEqual(r.returncode, 0, r.stderr)
        public = configured_public_keys(self.cfg)
        for name, path in key_files(self.work).items():
            mode = stat.S_IMODE(os.stat(path).st_mode)
            self.assertEqual(mode, 0o600, f"{path} has mode {mode:o}")
            self.assertEqual(len(public[name]), 40)
            self.assertEqual(public[name], key_file_public_key(path))
            self.assertIn(f"{name}: wrote {path}", r.stdout)
        self.assertNotEqual(public["primary"], public["backup"])
        # Comments survive the rewrite.
        with open(self.cfg) as f:
            after = f.read()
        for line in before.splitlines():
            if line.lstrip().startswith("#"):
                self.assertIn(line, after)
        # The configuration still loads.
        r = rdfcom("--config", self.cfg, "events")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_keygen_refuses_to_overwrite_without_force(self):
        self.assertEqual(self.keygen().returncode, 0)
        first = configured_public_keys(self.cfg)
        r = self.keygen()
        self.assertEqual(r.returncode, 1)
        self.assertIn("already exist", r.stderr)
        self.assertIn("--force", r.stderr)
        self.assertEqual(configured_public_keys(self.cfg), first)

        r = self.keygen("--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        second = configured_public_keys(self.cfg)
        for name, path in key_files(self.work).items():
            self.assertNotEqual(second[name], first[name])
            self.assertEqual(second[name], key_file_public_key(path))
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_keygen_operator_writes_its_key_file_and_adds_the_operator(self):
        self.assertEqual(self.keygen().returncode, 0)
        r = self.keygen("--operator", "alice")
        self.assertEqual(r.returncode, 0, r.stderr)
        path = os.path.join(self.work, "keys", "operator-alice.key")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(self.cfg) as f:
            text = f.read()
        self.assertIn(f'operators {{ name: "alice" public_key: "{key_file_public_key(path)}" '
                      f'key_file: "keys/operator-alice.key" }}', text)
        self.assertEqual(rdfcom("--config", self.cfg, "events").returncode, 0)
        # Once per name; a bad name is refused.
        r = self.keygen("--operator", "alice")
        self.assertEqual(r.returncode, 1)
        self.assertIn("already in", r.stderr)
        self.assertEqual(self.keygen("--operator", "a/b").returncode, 1)
        self.assertEqual(rdfcom("--config", self.cfg, "status", "--operator", "x").returncode, 2)

    def test_events_json_after_a_load(self):
        self.assertEqual(self.keygen().returncode, 0)
        r = subprocess.run([rdftest.binary("rdf-load"), "--config", self.cfg, "--txns", "10",
                            "--quiet"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = rdfcom("--config", self.cfg, "events", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        events = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertTrue(events, "no events printed")
        recovery = [e for e in events if e["number"] == 934]
        self.assertEqual(len(recovery), 1, events)
        self.assertEqual(recovery[0]["node"], "primary")
        self.assertEqual(recovery[0]["severity"], "INFO")
        self.assertIsInstance(recovery[0]["time_us"], int)
        # Filters: the backup has no events yet; ERROR and above hides 934.
        r = rdfcom("--config", self.cfg, "--node", "backup", "events", "--json")
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        r = rdfcom("--config", self.cfg, "events", "--min-severity", "ERROR")
        self.assertEqual((r.returncode, r.stdout), (0, ""), r.stderr)
        r = rdfcom("--config", self.cfg, "events", "--number", "934", "--since", "1h")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^\S+Z primary \S+ 934 INFO recovery complete")

    def test_usage_errors_exit_two(self):
        for args in (["--config", self.cfg, "bogus"], ["--config", self.cfg],
                     ["--config", self.cfg, "events", "--since", "yesterday"],
                     ["--config", self.cfg, "events", "--force"], ["events"]):
            r = rdfcom(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("usage: rdfcom", r.stderr)
        r = rdfcom("--help")
        self.assertEqual(r.returncode, 0)
        for command in ("keygen", "events"):
            self.assertIn(command, r.stdout)

    def test_missing_configuration_exits_one(self):
        r = rdfcom("--config", os.path.join(self.work, "none.textproto"), "keygen")
        self.assertEqual(r.returncode, 1)
        self.assertIn("none.textproto", r.stderr)


if __name__ == "__main__":
    unittest.main()
