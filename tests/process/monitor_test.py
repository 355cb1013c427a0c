#!/usr/bin/env python3
"""The monitors and rdfcom with the real binaries on loopback: status JSON
during and after a load, restarts of SIGKILLed children, a SIGKILLed
monitor restarted without duplicates, update stop/start, stop --drain and
verify, rdfcom's errors, event filters, the metrics endpoint checked by
promtool and scraped by a real Prometheus server, the control port's rights
by key (operators versus node keys), and a SIGSTOPped (hung) updater shown
HUNG, then killed and restarted."""

import json
import os
import signal
import subprocess
import time
import unittest
import urllib.request

import rdftest
from rdftest import MonitorSystem

VOLUMES = ["DATA01", "DATA02", "DATA03", "DATA04"]
K = 5


class MonitorTest(unittest.TestCase):
    def setUp(self):
        self.sys = MonitorSystem()
        self.addCleanup(self.sys.cleanup)

    def test_status_json_during_and_after_a_load_then_drain_and_verify(self):
        self.sys.start()
        load = self.sys.load(3000, extra=("--rate", "1000"))
        seen_running = False
        for _ in range(200):
            s = self.sys.status()
            self.assertIsNotNone(s)
            if s["extractor"]["state"] == "RUNNING" and s["primary"]["audit_end_asn"] > 0:
                seen_running = True
                # The documented fields, numbers as JSON numbers.
                for k in ("node", "reachable", "audit_end_asn", "audit_end_time_us"):
                    self.assertIn(k, s["primary"])
                for k in ("state", "sent_asn", "acked_asn", "rtd_ms"):
                    self.assertIn(k, s["extractor"])
                for k in ("state", "save_point_asn", "last_message_age_ms"):
                    self.assertIn(k, s["receiver"])
                self.assertEqual([u["volume"] for u in s["updaters"]],
                                 ["$" + v for v in VOLUMES])
                for u in s["updaters"]:
                    for k in ("state", "applied_asn", "rtd_ms", "backlog_records",
                              "backlog_bytes", "last_progress_age_ms", "last_error"):
                        self.assertIn(k, u)
                    self.assertIsInstance(u["applied_asn"], int)
                    # (Rows are not one instant: each process publishes once
                    # a second, and the backup is asked after the primary,
                    # so an updater may be past the audit end shown.)
                self.assertIn("trails", s["purger"])
                self.assertIsInstance(s["primary"]["audit_end_asn"], int)
                self.assertLessEqual(s["extractor"]["acked_asn"], s["primary"]["audit_end_asn"])
            if load.p.poll() is not None:
                break
            time.sleep(0.1)
        self.assertEqual(load.wait(120), 0)
        self.assertTrue(seen_running)
        s = rdftest.wait_for(lambda: (lambda s: s if s and self.sys.drained(s) else None)(
            self.sys.status()), 60, "the backup to apply everything")
        # After the load: caught up, nothing waiting, the audit end is the trail's.
        end = rdftest.audit_records(self.sys.primary)[-1]["asn"]
        self.assertEqual(s["primary"]["audit_end_asn"], end)
        self.assertEqual(s["state"], "NORMAL")
        for u in s["updaters"]:
            self.assertEqual(u["applied_asn"], s["receiver"]["save_point_asn"])
            self.assertEqual(u["backlog_records"], 0)
            self.assertEqual(u["state"], "RUNNING")
        text = self.sys.rdfcom("status", check=True).stdout
        self.assertIn("state NORMAL", text)
        self.assertIn("updater-DATA01", text)

        # stop --drain while more load runs: everything written before the
        # drain began is shipped and applied; both sets stop.
        r = self.sys.rdfcom("stop", "--drain", check=True)
        self.assertIn("drained through ASN", r.stdout)
        s = self.sys.status()
        self.assertEqual(s["state"], "STOPPED")
        self.assertEqual(self.sys.running("rdf-receiver"), [])
        self.assertEqual(self.sys.running("rdf-extractor"), [])
        drain = rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 852), 10,
                                 "event 852")
        self.assertEqual(int(drain[0]["fields"]["asn"]), end)
        v = self.sys.rdfcom("verify")
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertEqual(subprocess.run(
            ["python3", os.path.join(os.path.dirname(__file__), "check_volumes.py"),
             "--compare", self.sys.primary, self.sys.backup]).returncode, 0)
        # verify logs its result on the backup: 981 when equal...
        match = rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 981), 10,
                                 "event 981")
        self.assertEqual(match[-1]["fields"]["files"], "4")
        self.assertEqual(match[-1]["fields"]["volumes"], "4")
        self.assertGreater(int(match[-1]["fields"]["records"]), 0)
        # ... and 980 per file that differs (a record only the backup has).
        subprocess.run(["mdb_load", "-T", "-s", "LOAD",
                        os.path.join(self.sys.backup, "volumes", "DATA02")],
                       input=b"zz-extra\nvalue\n", check=True)
        v = self.sys.rdfcom("verify", timeout=60)
        self.assertEqual(v.returncode, 1, v.stdout + v.stderr)
        mismatch = rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 980), 10,
                                    "event 980")
        self.assertEqual(len(mismatch), 1)
        self.assertEqual(mismatch[0]["severity"], "ERROR")
        self.assertEqual({k: mismatch[0]["fields"][k] for k in ("volume", "file", "differences",
                                                                "first_key")},
                         {"volume": "$DATA02", "file": "LOAD", "differences": "1",
                          "first_key": "zz-extra"})
        # Started again, it runs normally.
        self.sys.rdfcom("start", check=True)
        self.sys.wait_state("NORMAL")

    def test_monitor_restarts_a_sigkilled_child_and_logs_it(self):
        self.sys.start()
        s = self.sys.status()
        old = s["receiver"]["pid"]
        self.assertGreater(old, 0)
        os.kill(old, signal.SIGKILL)
        s = rdftest.wait_for(
            lambda: (lambda s: s if s and s["receiver"]["pid"] not in (0, old) else None)(
                self.sys.status()),
            30, "a new receiver")
        self.assertEqual(s["receiver"]["restarts"], 1)
        self.assertIn("signal 9", s["receiver"]["last_exit"])
        died = rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 921), 10,
                                "event 921")
        self.assertEqual(died[0]["fields"]["process"], "receiver")
        self.assertEqual(died[0]["fields"]["pid"], str(old))
        # The notify command got the ERROR event as one JSON line.
        notified = rdftest.wait_for(lambda: [e for e in json_lines(read(self.sys.notified))
                                             if e["number"] == 921], 10, "the notify command")
        self.assertEqual(notified[0]["fields"]["process"], "receiver")
        self.assertTrue(all(e["severity"] in ("ERROR", "CRITICAL")
                            for e in json_lines(read(self.sys.notified))))
        started = [e for e in rdftest.events(self.sys.cfg, "backup", 920)
                   if e["fields"]["process"] == "receiver"]
        self.assertEqual(len(started), 2)
        # Event filters: number, severity, process, since.
        errors = json_lines(self.sys.rdfcom("--node", "backup", "events", "--json",
                                            "--min-severity", "ERROR", check=True).stdout)
        self.assertTrue(errors)
        self.assertTrue(all(e["severity"] in ("ERROR", "CRITICAL") for e in errors))
        self.assertIn(921, [e["number"] for e in errors])
        mon = json_lines(self.sys.rdfcom("events", "--json", "--process", "monitor",
                                         check=True).stdout)
        self.assertEqual({e["process"] for e in mon}, {"monitor"})
        self.assertEqual({e["node"] for e in mon}, {"primary", "backup"})
        self.assertEqual(json_lines(self.sys.rdfcom("events", "--json", "--since",
                                                    "2000-01-01T00:00:00Z", "--number", "921",
                                                    check=True).stdout)[0]["number"], 921)
        time.sleep(1.5)
        recent = json_lines(self.sys.rdfcom("events", "--json", "--since", "1s", "--number",
                                            "921", check=True).stdout)
        self.assertEqual(recent, [])

    def test_sigkilled_monitor_restarted_leaves_no_duplicate_process(self):
        self.sys.start()
        before = self.sys.wait_processes(1, 4, 1)
        self.sys.monitors["backup"].kill()
        # Its children die with it (PR_SET_PDEATHSIG) and release their
        # locks (after pgrep stops seeing them: rdftest.lock_holder).
        lock_dir = os.path.join(self.sys.backup, "locks")
        children = [f[:-len(".lock")] for f in os.listdir(lock_dir)
                    if f.endswith(".lock") and f != "monitor.lock"]
        self.assertEqual(len(children), 6, children)  # receiver, 4 updaters, purger
        rdftest.wait_for(lambda: all(not self.sys.running(p) for p in before) and
                         not any(rdftest.lock_holder(self.sys.backup, n) for n in children),
                         10, "the children to die with the monitor")
        # A leftover copy (started by hand) is ended by the new monitor.
        stray = rdftest.Process([rdftest.binary("rdf-purger"), "--config", self.sys.cfg],
                                log_path=os.path.join(self.sys.work, "stray.log"))
        self.sys.others.append(stray)
        rdftest.wait_for(lambda: (rdftest.status(self.sys.backup, "purger") or {}).get("pid")
                         == stray.pid, 10, "the stray purger to run")
        self.sys.start_monitor("backup")
        self.sys.wait_state("NORMAL")
        self.assertIsNotNone(stray.p.poll(), "the stray purger still runs")
        self.sys.wait_processes(1, 4, 1)
        time.sleep(1)  # and no second copy of any of them comes up
        after = {p: self.sys.running(p) for p in before}
        self.assertEqual(len(after["rdf-receiver"]), 1)
        self.assertEqual(len(after["rdf-updater"]), 4)
        self.assertEqual(len(after["rdf-purger"]), 1)
        left = [e for e in rdftest.events(self.sys.cfg, "backup", 923)
                if "leftover" in e["fields"].get("reason", "")]
        self.assertEqual([e["fields"]["process"] for e in left], ["purger"])
        # And the pipeline still works end to end.
        self.assertEqual(self.sys.load(500).wait(120), 0)
        rdftest.wait_for(lambda: self.sys.drained(self.sys.status()), 60, "drain")

    def test_update_stop_then_start_catches_up(self):
        self.sys.start()
        r = self.sys.rdfcom("update", "stop", check=True)
        self.assertIn("UPDATE_STOPPED", r.stdout)
        self.assertEqual(self.sys.status()["state"], "UPDATE_STOPPED")
        self.assertEqual(self.sys.running("rdf-updater"), [])
        self.assertEqual(self.sys.load(1000).wait(120), 0)
        end = rdftest.audit_records(self.sys.primary)[-1]["asn"]
        s = rdftest.wait_for(lambda: (lambda s: s if s["receiver"]["save_point_asn"] >= end
                                      else None)(self.sys.status()), 60, "receiving")
        for u in s["updaters"]:
            self.assertEqual(u["state"], "HELD")
            self.assertLess(u["applied_asn"], end)
        # The updaters stay held (no restart) while updating is stopped.
        time.sleep(1.5)
        self.assertEqual(self.sys.running("rdf-updater"), [])
        self.sys.rdfcom("update", "start", check=True)
        s = rdftest.wait_for(lambda: (lambda s: s if self.sys.drained(s) else None)(
            self.sys.status()), 60, "the updaters to catch up")
        self.assertEqual(s["state"], "NORMAL")
        self.assertTrue(rdftest.events(self.sys.cfg, "backup", 964))
        self.assertTrue(rdftest.events(self.sys.cfg, "backup", 965))

    def test_rdfcom_errors_for_down_node_bad_configuration_and_wrong_state(self):
        # Bad configuration.
        r = subprocess.run([rdftest.binary("rdfcom"), "--config",
                            os.path.join(self.sys.work, "missing.textproto"), "status"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.textproto", r.stderr)
        # Both nodes down: status says so and exits 1, naming the endpoints.
        r = self.sys.rdfcom("status", "--json")
        self.assertEqual(r.returncode, 1)
        s = json.loads(r.stdout)
        self.assertFalse(s["primary"]["reachable"])
        self.assertFalse(s["backup"]["reachable"])
        self.assertIn("no answer from its monitor", r.stderr)
        r = self.sys.rdfcom("start")
        self.assertEqual(r.returncode, 1)
        self.assertIn("is rdf-monitor running there", r.stderr)
        # Only the backup up: status marks the primary unreachable.
        self.sys.start_monitor("backup")
        rdftest.wait_for(lambda: (self.sys.status() or {}).get("backup", {}).get("reachable"),
                         30, "the backup monitor")
        r = self.sys.rdfcom("status", "--json")
        self.assertEqual(r.returncode, 1)
        s = json.loads(r.stdout)
        self.assertEqual(s["state"], "PRIMARY_UNREACHABLE")
        self.assertTrue(s["backup"]["reachable"])
        # Wrong state: update stop on the primary; update start while stopped.
        self.sys.start_monitor("primary")
        rdftest.wait_for(lambda: (self.sys.status() or {}).get("primary", {}).get("reachable"),
                         30, "the primary monitor")
        # The backup's monitor saw its peer missing, then back (925, 926).
        down = rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 925), 10, "925")
        self.assertEqual(down[0]["fields"]["node"], "primary")
        rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 926), 15, "926")
        r = self.sys.rdfcom("--node", "primary", "update", "stop")
        self.assertEqual(r.returncode, 1)
        self.assertIn("acts on the backup", r.stderr)
        self.sys.rdfcom("--node", "backup", "stop", check=True)
        r = self.sys.rdfcom("update", "start")
        self.assertEqual(r.returncode, 1)
        self.assertIn("stopped", r.stderr)
        # --watch --json: one object per line until interrupted.
        watch = subprocess.Popen([rdftest.binary("rdfcom"), "--config", self.sys.cfg, "status",
                                  "--watch", "--json"], stdout=subprocess.PIPE, text=True)
        time.sleep(2.5)
        watch.send_signal(signal.SIGINT)
        out, _ = watch.communicate(timeout=30)
        self.assertEqual(watch.returncode, 0)
        objects = json_lines(out)
        self.assertGreaterEqual(len(objects), 2)
        self.assertTrue(all(o["backup"]["reachable"] for o in objects))
        # Usage errors exit 2.
        self.assertEqual(self.sys.rdfcom("status", "--drain").returncode, 2)
        self.assertEqual(self.sys.rdfcom("update", "pause").returncode, 2)

    def test_control_port_rights_go_by_operator_key_not_any_node_key(self):
        keys = os.path.join(self.sys.work, "keys")
        # No operators configured: the other node's key only reads.
        self.sys.start()
        r = self.sys.rdfcom("--key-file", f"{keys}/primary.key", "--node", "backup", "stop")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("node 'primary' may only read", r.stderr)
        refused = rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 985), 10,
                                   "event 985")
        self.assertEqual(refused[0]["fields"]["caller"], "node primary")
        self.assertEqual(refused[0]["fields"]["command"], "STOP")
        self.assertEqual(self.sys.status()["backup"]["state"], "NORMAL")
        # With an operator: node keys only read, the operator's key manages.
        self.sys.rdfcom("keygen", "--operator", "alice", check=True)
        for node in ("primary", "backup"):
            self.sys.monitors[node].stop(timeout=60)
        self.sys.start()
        r = self.sys.rdfcom("--key-file", f"{keys}/backup.key", "--node", "backup", "stop")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("needs an operator key", r.stderr)
        self.sys.rdfcom("--key-file", f"{keys}/primary.key", "status", "--json", check=True)
        # rdfcom finds alice's key through the operators block keygen added.
        self.sys.rdfcom("--node", "backup", "stop", check=True)
        self.assertEqual(self.sys.status()["backup"]["state"], "STOPPED")
        self.sys.rdfcom("--key-file", f"{keys}/operator-alice.key", "--node", "backup", "start",
                        check=True)
        self.sys.wait_state("NORMAL")

    def test_metrics_pass_promtool_and_a_prometheus_server_scrapes_them(self):
        self.sys.start()
        self.assertEqual(self.sys.load(500).wait(120), 0)
        rdftest.wait_for(lambda: self.sys.drained(self.sys.status()), 60, "drain")
        texts = {}
        for node in ("primary", "backup"):
            url = f"http://127.0.0.1:{self.sys.metrics_port(node)}/metrics"
            texts[node] = urllib.request.urlopen(url, timeout=10).read().decode()
            check = subprocess.run(["promtool", "check", "metrics"], input=texts[node],
                                   capture_output=True, text=True, timeout=60)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn('rdf_rtd_seconds{node="backup",process="updater-DATA01"}', texts["backup"])
        self.assertIn('rdf_save_point_asn{node="backup",process="receiver"}', texts["backup"])
        self.assertIn("rdf_audit_end_asn", texts["primary"])
        self.assertIn('rdf_events_total{node="backup",severity="INFO"}', texts["backup"])

        # A real Prometheus server, started and stopped by pid.
        prom_dir = os.path.join(self.sys.work, "prometheus")
        os.makedirs(prom_dir)
        targets = ", ".join(f"'127.0.0.1:{self.sys.metrics_port(n)}'"
                            for n in ("primary", "backup"))
        with open(os.path.join(prom_dir, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n"
                    f"  - job_name: rdf\n    static_configs:\n      - targets: [{targets}]\n")
        port = rdftest.free_port()
        prom = rdftest.Process(["prometheus", "--config.file",
                                os.path.join(prom_dir, "prometheus.yml"),
                                "--storage.tsdb.path", os.path.join(prom_dir, "data"),
                                "--web.listen-address", f"127.0.0.1:{port}"],
                               log_path=os.path.join(prom_dir, "prometheus.log"))
        self.sys.others.append(prom)

        def query():
            try:
                url = f"http://127.0.0.1:{port}/api/v1/query?query=rdf_monitor_up"
                r = json.loads(urllib.request.urlopen(url, timeout=5).read())
                nodes = {x["metric"]["node"] for x in r["data"]["result"]}
                return nodes if nodes == {"primary", "backup"} else None
            except (OSError, ValueError, KeyError):
                return None
        rdftest.wait_for(query, 60, "Prometheus to scrape both monitors")
        url = (f"http://127.0.0.1:{port}/api/v1/query?query="
               "rdf_applied_asn%7Bprocess%3D%22updater-DATA01%22%7D")
        r = json.loads(urllib.request.urlopen(url, timeout=5).read())
        self.assertGreater(float(r["data"]["result"][0]["value"][1]), 0)


class HungProcessTest(unittest.TestCase):
    """A child that is alive but does not progress (SIGSTOP plays one stuck
    in I/O or deadlocked) is seen: HUNG in status, the node not NORMAL, event
    983, then killed (984) and restarted, and the node NORMAL again."""

    def setUp(self):
        # Default hung_after_ms (10 s); a shorter restart time than the
        # default 30 s keeps the test short.
        self.sys = MonitorSystem({"monitor.hung_restart_after_ms": 20000})
        self.addCleanup(self.sys.cleanup)

    def test_sigstopped_updater_is_hung_then_killed_and_restarted(self):
        self.sys.start()
        before = self.sys.status()["updaters"][0]
        pid, name = before["pid"], before["name"]
        self.assertGreater(pid, 0)
        os.kill(pid, signal.SIGSTOP)
        self.addCleanup(lambda: os.path.exists(f"/proc/{pid}") and os.kill(pid, signal.SIGCONT))
        stopped_at = time.time()

        def hung():
            s = self.sys.status()
            return s if s and s["updaters"][0]["state"] == "HUNG" else None
        s = rdftest.wait_for(hung, 15, f"{name} shown HUNG")
        self.assertLess(time.time() - stopped_at, 15)
        self.assertNotEqual(s["state"], "NORMAL")
        self.assertEqual(s["backup"]["state"], "DEGRADED")
        self.assertEqual(s["updaters"][0]["pid"], pid)
        self.assertGreaterEqual(s["updaters"][0]["status_age_ms"], 10000)
        text = self.sys.rdfcom("status", check=True).stdout
        self.assertRegex(text, rf"{name}\s+\S+\s+HUNG\b.*no status for")
        e = rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 983), 10,
                             "event 983")
        self.assertEqual([x["fields"]["process"] for x in e], [name])
        self.assertEqual(e[0]["fields"]["pid"], str(pid))

        def restarted():
            s = self.sys.status()
            u = s and s["updaters"][0]
            return s if u and u["pid"] not in (0, pid) and u["state"] != "HUNG" else None
        s = rdftest.wait_for(restarted, 40, f"{name} restarted")
        self.assertIn("signal 9", s["updaters"][0]["last_exit"])
        self.assertEqual(s["updaters"][0]["restarts"], 1)
        killed = rdftest.events(self.sys.cfg, "backup", 984)
        self.assertEqual([x["fields"]["process"] for x in killed], [name])
        self.assertGreaterEqual(int(killed[0]["fields"]["status_age_ms"]), 20000)
        self.sys.wait_state("NORMAL", timeout=30)
        # One episode, one 983.
        self.assertEqual(len(rdftest.events(self.sys.cfg, "backup", 983)), 1)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


if __name__ == "__main__":
    unittest.main()
