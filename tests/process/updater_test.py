#!/usr/bin/env python3
"""Updaters (REDO) with the real binaries on loopback: after a mixed load
with aborts drains, every protected file on the backup equals the
primary's, compared with LMDB's own mdb_dump (bookkeeping databases
excluded), also when updaters are killed with SIGKILL during the load or
right after an LMDB commit; errors 10/11 follow the configured policy and
reach the exception log; a full disk under a backup volume makes the updater
wait in RETRYING and then finish with nothing lost; after a machine restart
(pretended, then a real power cut of the backup's own file system) every
volume goes back to its last checkpoint and redoes. Volumes whose LMDB map
starts at 1 MiB grow (kept across an updater restart) and drain equal while
the purger purges; an insert that REDO skipped as a duplicate is left alone
by takeover's UNDO."""

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


class UpdaterTest(unittest.TestCase):
    def setUp(self):
        # Small batches where a test needs many LMDB transactions.
        small = "commit" in self._testMethodName or "exception" in self._testMethodName
        extra = {"updater.batch_records": 32} if small else {}
        if "machine_restart" in self._testMethodName:
            extra["updater.checkpoint_ms"] = 60000  # only the checkpoint at start
        if "power_loss" in self._testMethodName:
            if "copy" in self._testMethodName:
                extra["updater.checkpoint_mode"] = "COPY"
                extra["updater.checkpoint_copy_ms"] = 1000
            else:
                extra["updater.checkpoint_mode"] = "IN_PLACE"
                extra["updater.checkpoint_ms"] = 300
        if "takeover_on_a_full_disk" in self._testMethodName:
            extra["updater.takeover_retry_ms"] = 2000
            # No checkpoint copy to allocate at open: the disk fills in REDO.
            extra["updater.checkpoint_mode"] = "IN_PLACE"
        if "map_grown" in self._testMethodName:
            extra["lmdb.map_bytes"] = 1 << 20
            extra["trail.image_segment_bytes"] = 1 << 20
            extra["purger.interval_ms"] = 300
            extra["updater.checkpoint_copy_ms"] = 1000
        self.sys = ShipSystem(extra=extra or None)
        if "map_grown" in self._testMethodName:
            # Every volume's own map at 1 MiB too.
            with open(self.sys.cfg) as f:
                text = f.read()
            for v in VOLUMES:
                text = text.replace(f'name: "{v}"\n', f'name: "{v}"\n  map_bytes: 1048576\n')
            with open(self.sys.cfg, "w") as f:
                f.write(text)
        # The backup's data folder on a disk of its own, whose power is cut.
        self.disk = None
        if "power_loss" in self._testMethodName:
            try:
                self.disk = rdftest.LoopDisk(self.sys.work, self.sys.backup)
            except BaseException:
                self.sys.cleanup()  # tearDown does not run when setUp fails
                raise
        # Takeover's updaters apply everything in the skip test.
        updaters = [] if ("skipped_in_redo" in self._testMethodName
                          or "damaged_trail" in self._testMethodName) else VOLUMES
        for name in ["receiver", "extractor"] + [f"updater-{v}" for v in updaters]:
            self.sys.start(name)

    def tearDown(self):
        if self.disk:
            self.sys.stop_all()
            self.disk.remove()
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
        self.assertEqual((st["backlog_records"], st["backlog_bytes"]), (0, 0))

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

    def insert_load(self, txns, commit_log=None):
        extra = ["--mode", "insert"] + (["--commit-log", commit_log] if commit_log else [])
        self.assertEqual(self.sys.load(txns, extra=extra).wait(300), 0)

    def updater(self, volume, env_extra=None):
        env = dict(os.environ)
        env.update(env_extra or {})
        return rdftest.Process([rdftest.binary("rdf-updater"), "--config", self.sys.cfg,
                                "--volume", volume],
                               log_path=os.path.join(self.sys.work, f"updater-{volume}.log"),
                               env=env)

    def test_kill_right_after_an_lmdb_commit_applies_nothing_twice(self):
        self.sys.kill("updater-$DATA01")
        self.insert_load(1500)
        self.sys.wait_drained()
        for _ in range(20):
            # Dies by its own SIGKILL right after its first commit.
            p = self.updater("$DATA01", {"RDF_TEST_POINTS": "updater.after_commit@1"})
            self.assertEqual(p.wait(60), -9)
        self.sys.start("updater-$DATA01")
        self.wait_applied()
        self.assertBackupEqualsPrimary()
        skipped = [e for e in rdftest.events(self.sys.cfg, "backup") if e["number"] in (961, 962)]
        self.assertEqual(skipped, [], "an insert applied twice would be error 10")
        restarts = [e for e in rdftest.events(self.sys.cfg, "backup", 837)
                    if e["process"] == "updater-DATA01"]
        self.assertGreaterEqual(len(restarts), 21)

    def applied(self):
        return {v: rdftest.status(self.sys.backup, f"updater-{v.lstrip('$')}")["applied_asn"]
                for v in VOLUMES}

    def restart_after_reboot(self, before, boot_id, before_end=None):
        """Starts the four updaters as after a reboot (another boot id):
        each volume must log 969, gone back below its applied ASN `before`
        (a dict), or, when `before` is None, to no further than the
        receiver's save point, which no applied ASN passes (read once the
        redo is done: it only grows); then (after `before_end`, if any) they
        must redo to volumes equal to the primary's with no insert found
        twice."""
        ups = [self.updater(v, {"RDF_TEST_POINTS": f"boot_id={boot_id}"}) for v in VOLUMES]
        try:
            rolled = rdftest.wait_for(
                lambda: (lambda es: es if len(es) == len(VOLUMES) else None)(
                    rdftest.events(self.sys.cfg, "backup", 969)), 60, "event 969 per volume")
            for e in rolled:
                v = e["fields"]["volume"]
                if before is not None:
                    self.assertLess(int(e["fields"]["applied_asn"]), before[v],
                                    f"{v} went back to a checkpoint before the restart")
            if before_end:
                before_end()
            self.wait_applied()
            save_point = rdftest.status(self.sys.backup, "receiver")["save_point_asn"]
            for e in rolled:
                self.assertLessEqual(int(e["fields"]["applied_asn"]), save_point, e)
            self.assertBackupEqualsPrimary()
            skipped = [e for e in rdftest.events(self.sys.cfg, "backup")
                       if e["number"] in (961, 962)]
            self.assertEqual(skipped, [], "redone inserts found no key twice")
        finally:
            for p in ups:
                p.stop()

    def test_a_machine_restart_rolls_back_to_the_checkpoint_and_redoes(self):
        # Every commit of this load is deferred: the only checkpoint is the
        # one each updater took when it started, before the load.
        self.insert_load(2000)
        self.wait_applied()
        before = self.applied()
        for v in VOLUMES:
            self.sys.kill(f"updater-{v}")
        # The machine "restarted": the record's boot id is no longer this one.
        self.restart_after_reboot(before, "after-the-restart")

    def test_a_power_loss_under_the_backup_rolls_back_and_redoes(self):
        # Checkpoints in place every 300 ms while the load runs: at the cut,
        # every volume has commits that no checkpoint made durable.
        self.power_loss_during_a_load()

    def test_a_power_loss_under_the_backup_in_copy_mode_restores_the_copy_and_redoes(self):
        # A copy of each volume every second (about); data.mdb itself is never
        # synced, so after the cut it may hold any mix of pages.
        self.power_loss_during_a_load()

    def power_loss_during_a_load(self):
        # Inserts, so that a change redone over itself would be error 10.
        load = self.sys.load(60000, extra=["--mode", "insert"])
        try:
            rdftest.wait_for(lambda: all(
                (rdftest.status(self.sys.backup, f"updater-{v.lstrip('$')}") or {})
                .get("applied_asn", 0) > 5000 for v in VOLUMES), 120, "the updaters to apply")
            time.sleep(1)
            self.assertIsNone(load.p.poll(), "the load still runs at the cut")
            names = ["receiver"] + [f"updater-{v}" for v in VOLUMES]
            self.disk.cut_power([self.sys.procs.pop(n) for n in names])
            # The status the updaters published before the cut may be older
            # than their last checkpoint: no `before` to compare with.
            self.sys.start("receiver")
            self.restart_after_reboot(None, "after-the-power-cut",
                                      before_end=lambda: self.assertEqual(load.wait(300), 0))
        finally:
            load.stop()

    def set_policy(self, policy):
        with open(self.sys.cfg) as f:
            text = f.read()
        with open(self.sys.cfg, "w") as f:
            f.write(rdftest.set_fields(text, {"updater.duplicate_key": policy}))

    def test_duplicate_keys_follow_the_policy_and_reach_the_exception_log(self):
        commits = os.path.join(self.sys.work, "commits.log")
        self.insert_load(40, commits)
        self.wait_applied()
        self.sys.kill("updater-$DATA01")
        # Keys the next transactions will insert, put on the backup behind
        # rdf's back.
        last = max(rdftest.read_commit_log(commits))
        planted = [f"{t}:{i}" for t in range(last + 1, last + 80) for i in range(5)]
        vol = rdftest.volume_dirs(self.sys.backup)["$DATA01"]
        text = "".join(f"{k}\nplanted\n" for k in planted)
        subprocess.run(["mdb_load", "-T", "-s", "LOAD", vol], input=text.encode(), check=True)
        self.insert_load(40, commits)
        self.sys.wait_drained()
        primary = rdftest.dump(rdftest.volume_dirs(self.sys.primary)["$DATA01"], "LOAD")
        clashes = {k for k in planted if k.encode() in primary}
        self.assertTrue(clashes)
        log = os.path.join(self.sys.backup, "exceptions", "DATA01.jsonl")

        # Policy STOP: the updater stops at the first clash, applies nothing
        # past it and says so.
        self.set_policy("STOP")
        self.sys.start("updater-$DATA01")
        st = rdftest.wait_for(lambda: (lambda s: s if s and s["state"] == "STOPPED" else None)(
            rdftest.status(self.sys.backup, "updater-DATA01")), 30, "state STOPPED")
        self.assertIn("error 10", st["last_error"])
        # A stopped updater never looks caught up.
        st = rdftest.wait_for(lambda: (lambda s: s if s and s["backlog_records"] > 0 else None)(
            rdftest.status(self.sys.backup, "updater-DATA01")), 10, "a backlog in status")
        self.assertGreater(st["backlog_bytes"], 0)
        self.assertGreater(st["rtd_ms"], 0)
        self.assertLess(st["applied_asn"], st["save_point_asn"])
        rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 963), 10, "event 963")
        with open(log) as f:
            lines = [json.loads(l) for l in f]
        self.assertEqual(lines[-1]["action"], "stopped")
        self.sys.kill("updater-$DATA01")

        # Policy SKIP (the default): each clash is skipped, logged and reported.
        self.set_policy("SKIP")
        os.remove(log)
        self.sys.start("updater-$DATA01")
        self.wait_applied()
        with open(log) as f:
            lines = [json.loads(l) for l in f]
        self.assertEqual({l["key"] for l in lines}, clashes)
        for l in lines:
            self.assertEqual((l["error"], l["action"], l["op"], l["volume"], l["file"]),
                             (10, "skipped", "INSERT", "$DATA01", "LOAD"))
            self.assertGreater(l["asn"], 0)
        # Events are rate-limited, never lost: each written one counts the
        # repeats dropped before it, and stopping reports those still pending.
        self.sys.procs.pop("updater-$DATA01").stop()
        mine = [e for e in rdftest.events(self.sys.cfg, "backup")
                if e["process"] == "updater-DATA01"]
        reported = sum(1 + e.get("suppressed", 0) for e in mine if e["number"] == 961)
        reported += sum(e.get("suppressed", 0) for e in mine
                        if e["number"] == 992 and e["fields"].get("number") == "961")
        self.assertGreaterEqual(reported, len(clashes))
        # The backup keeps its planted values: the copies differ, as reported.
        backup = rdftest.dump(vol, "LOAD")
        for k in clashes:
            self.assertEqual(backup[k.encode()], b"planted")

    def test_an_updater_killed_in_its_first_start_opens_its_volume_again(self):
        # Killed after making its checkpoint file and before the first record
        # in it (where this test's disk-full neighbour used to kill it under
        # load), the updater must open its volume again, not stop for good on
        # "neither slot holds a checkpoint record".
        vol = os.path.join(self.sys.backup, "volumes", "DATA01")
        rdftest.wait_for(lambda: os.path.exists(os.path.join(vol, "data.mdb")), 30,
                         "the updater to create its volume")
        self.sys.kill("updater-$DATA01")
        shutil.rmtree(vol)
        self.insert_load(200)
        self.sys.wait_drained()
        p = self.updater("$DATA01", {"RDF_TEST_POINTS": "checkpoint.record_file_made"})
        self.assertEqual(p.wait(60), -9)
        self.sys.start("updater-$DATA01")
        self.wait_applied()
        self.assertBackupEqualsPrimary()

    def test_disk_full_under_a_backup_volume_waits_then_finishes(self):
        self.assertEqual(os.geteuid(), 0, "this test mounts a small tmpfs: run it as root")
        vol = os.path.join(self.sys.backup, "volumes", "DATA01")
        rdftest.wait_for(lambda: os.path.exists(os.path.join(vol, "data.mdb")), 30,
                         "the updater to create its volume")
        self.sys.kill("updater-$DATA01")
        saved = vol + ".saved"
        os.rename(vol, saved)
        os.makedirs(vol)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", vol], check=True)
        try:
            for name in os.listdir(saved):
                with open(os.path.join(saved, name), "rb") as src, \
                        open(os.path.join(vol, name), "wb") as dst:
                    dst.write(src.read())
            self.insert_load(4000)
            self.sys.wait_drained()
            self.sys.start("updater-$DATA01")
            st = rdftest.wait_for(
                lambda: (lambda s: s if s and s["state"] == "RETRYING" else None)(
                    rdftest.status(self.sys.backup, "updater-DATA01")), 60, "state RETRYING",
                lambda: "status: {}\nlog:\n{}\nvolume: {}".format(
                    rdftest.status(self.sys.backup, "updater-DATA01"),
                    rdftest.log_tail(os.path.join(self.sys.work, "updater-$DATA01.log")),
                    {n: os.path.getsize(os.path.join(vol, n)) for n in os.listdir(vol)}))
            # LMDB reports a short write on a full disk as EIO.
            self.assertRegex(st["last_error"], "space|Input/output error")
            rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 739), 10, "event 739")
            time.sleep(2)  # still waiting, nothing skipped
            self.assertEqual(rdftest.status(self.sys.backup, "updater-DATA01")["state"], "RETRYING")
            subprocess.run(["mount", "-o", "remount,size=64m", vol], check=True)
            self.wait_applied()
            self.assertBackupEqualsPrimary()
            rdftest.wait_for(lambda: rdftest.events(self.sys.cfg, "backup", 960), 10, "event 960")
        finally:
            self.sys.stop_all()
            subprocess.run(["umount", "-l", vol])

    def test_takeover_on_a_full_disk_fails_in_bounded_time_and_resumes(self):
        # Finding 21: a lasting storage error in takeover's REDO was retried
        # for ever. With updater.takeover_retry_ms 2000 the takeover must fail
        # with the reason, and issued again once there is room, resume.
        self.assertEqual(os.geteuid(), 0, "this test mounts a small tmpfs: run it as root")
        self.insert_load(100)
        self.wait_applied()
        for v in VOLUMES:
            self.sys.kill(f"updater-{v}")
        vol = os.path.join(self.sys.backup, "volumes", "DATA01")
        saved = vol + ".saved"
        os.rename(vol, saved)
        os.makedirs(vol)
        # Room for the volume as it is and 256 KiB more.
        need = sum(os.path.getsize(os.path.join(saved, n)) for n in os.listdir(saved))
        size = (need >> 10) + 256
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}k", "tmpfs", vol], check=True)
        try:
            for name in os.listdir(saved):
                with open(os.path.join(saved, name), "rb") as src, \
                        open(os.path.join(vol, name), "wb") as dst:
                    dst.write(src.read())
            load = self.sys.load(10**6, clients=4, extra=["--mode", "insert"])
            rdftest.wait_for(lambda: (rdftest.status(self.sys.backup, "receiver") or {})
                             .get("save_point_asn", 0) > 20000, 120, "the save point to pass 20000")
            load.kill()
            self.sys.kill("extractor")
            time.sleep(1)
            began = time.time()
            r = subprocess.run([rdftest.binary("rdfcom"), "--config", self.sys.cfg, "takeover",
                                "--yes", "--json"], capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("issue the takeover again", r.stderr)
            failed = rdftest.events(self.sys.cfg, "backup", 972)
            self.assertEqual([e["fields"]["volume"] for e in failed], ["$DATA01"], r.stderr)
            self.assertRegex(failed[0]["fields"]["error"], "space|Input/output error")
            self.assertGreaterEqual(int(failed[0]["fields"]["retried_ms"]), 2000)
            self.assertLess(time.time() - began, 60)
            subprocess.run(["mount", "-o", "remount,size=64m", vol], check=True)
            rc, report, err = rdfcom_takeover(self.sys.cfg,
                                              log=os.path.join(self.sys.work, "takeover.log"))
            self.assertEqual(rc, 0, err)
            present, problems = rdftest.check_insert_transactions(self.sys.backup, K, VOLUMES)
            self.assertEqual(problems, [], "every transaction on the backup is whole")
            self.assertGreater(len(present), 100)
        finally:
            self.sys.stop_all()
            subprocess.run(["umount", "-l", vol])

    @staticmethod
    def newest_meta(volume_dir):
        """(map size, bytes in use) from the newest LMDB meta page of the
        environment in `volume_dir`."""
        import struct
        with open(os.path.join(volume_dir, "data.mdb"), "rb") as f:
            first = f.read(4096)
            psize = struct.unpack_from("<I", first, 16 + 24)[0]
            f.seek(psize)
            second = f.read(4096)
        # After the 16-byte page header: mm_mapsize at 16, mm_last_pg at 120,
        # mm_txnid at 128.
        metas = [(struct.unpack_from("<Q", p, 16 + 128)[0], struct.unpack_from("<Q", p, 16 + 16)[0],
                  (struct.unpack_from("<Q", p, 16 + 120)[0] + 1) * psize)
                 for p in (first, second)]
        newest = max(metas)
        return newest[1], newest[2]

    def map_size(self, volume):
        """The map size in the newest LMDB meta page of a backup volume."""
        return self.newest_meta(os.path.join(self.sys.backup, "volumes", volume.lstrip("$")))[0]

    def used_bytes(self, volume_dir):
        return self.newest_meta(volume_dir)[1]

    def test_volumes_map_grown_from_1_mib_drain_equal_across_updater_restarts(self):
        # Finding 2: the updater grew its map, returned an error, reopened the
        # volume at the configured 1 MiB (which LMDB prefers to the grown size)
        # and retried for ever (RETRYING, event 739 "map grown; retrying").
        # Here every volume starts with a 1 MiB map and takes 200 MiB of data
        # or more (RDF_MAP_GROWTH_TXNS=6000 runs a small load through the
        # same paths), the updaters are SIGKILLed once they have grown and
        # started again (the grown size must survive the reopen), and the
        # purger (a reader whose map the updaters outgrow, finding 8) keeps
        # purging.
        p = rdftest.Process([rdftest.binary("rdf-purger"), "--config", self.sys.cfg],
                            log_path=os.path.join(self.sys.work, "purger.log"))
        self.sys.procs["purger"] = p
        # 5 records of 2000 bytes per transaction over 4 volumes: 85,000
        # transactions put 200 MiB or more in each volume.
        txns = int(os.environ.get("RDF_MAP_GROWTH_TXNS", "85000"))
        load = self.sys.load(txns, clients=4, extra=["--mode", "insert", "--value-bytes", "2000"])
        grown = lambda: {e["process"] for e in rdftest.events(self.sys.cfg, "backup", 967)
                         if e["process"].startswith("updater-")}
        rdftest.wait_for(lambda: len(grown()) == len(VOLUMES), 180, "every updater to grow its map")
        time.sleep(1)
        for v in VOLUMES:
            self.sys.kill(f"updater-{v}")
        for v in VOLUMES:
            self.sys.start(f"updater-{v}")
        self.assertEqual(load.wait(600 * max(1, txns // 6000)), 0)
        self.wait_applied()
        # Compared by digest: 200 MiB a volume is too much to hold as dicts.
        prim = rdftest.volume_dirs(self.sys.primary)
        back = rdftest.volume_dirs(self.sys.backup)
        for v in VOLUMES:
            p, b = rdftest.user_file_digests(prim[v]), rdftest.user_file_digests(back[v])
            self.assertEqual(p, b, f"files of {v}")
            self.assertGreater(sum(n for n, _ in p.values()), 0)
        for v in VOLUMES:
            self.assertGreaterEqual(self.map_size(v), (16 << 20) * txns // 6000, v)
            if txns >= 85000:
                used = self.used_bytes(back[v])
                self.assertGreaterEqual(used, 200 << 20, f"data in {v}")
        errors = [e for e in rdftest.events(self.sys.cfg, "backup", 739)]
        self.assertEqual(errors, [], "no storage error: a full map is grown, never retried")
        # The purger read every volume throughout: it purged volume trails.
        rdftest.wait_for(lambda: (rdftest.status(self.sys.backup, "purger") or {})
                         .get("purged_segments", 0) > 4, 30, "the purger to purge segments")
        self.assertEqual([e for e in rdftest.events(self.sys.cfg, "backup", 834)
                          if "MDB_MAP_RESIZED" in e["fields"].get("reason", "")], [])

    def test_volumes_map_grown_with_a_crash_at_each_step_of_growth_drain_equal(self):
        # A crash in the middle of map growth (issue 17): with
        # RDF_TEST_POINTS=updater.crash_in_growth: each growth of each volume's map
        # SIGKILLs its updater once, at one of the four steps in turn (before
        # and after the checkpointer lets go of the map, after the new size is
        # set, after the grown map is pinned again); the updater is started
        # again each time, grows again and goes on. Every volume grows from
        # 1 MiB at least 4 times, so every step is met on every volume.
        env = dict(os.environ, RDF_TEST_POINTS="updater.crash_in_growth")
        for v in VOLUMES:
            self.sys.kill(f"updater-{v}")
            self.sys.start(f"updater-{v}", env=env)
        load = self.sys.load(3000, clients=4, extra=["--mode", "insert", "--value-bytes", "2000"])
        crashes = 0

        def restart_crashed():
            nonlocal crashes
            for v in VOLUMES:
                p = self.sys.procs[f"updater-{v}"]
                if p.p.poll() is not None:
                    self.assertEqual(p.p.returncode, -9, f"updater {v} exited, not crashed")
                    crashes += 1
                    self.sys.start(f"updater-{v}", env=env)

        deadline = time.time() + 600
        while load.p.poll() is None and time.time() < deadline:
            restart_crashed()
            time.sleep(0.2)
        self.assertEqual(load.wait(60), 0)
        self.sys.wait_drained()
        sp = rdftest.status(self.sys.backup, "receiver")["save_point_asn"]

        def applied():
            restart_crashed()
            return all((rdftest.status(self.sys.backup, f"updater-{v.lstrip('$')}") or {})
                       .get("applied_asn", 0) >= sp for v in VOLUMES)

        rdftest.wait_for(applied, 300, f"every updater to apply through {sp}")
        self.assertBackupEqualsPrimary()
        back = rdftest.volume_dirs(self.sys.backup)
        for v in VOLUMES:
            with open(os.path.join(back[v], "test-growth-crashes")) as f:
                count = int(f.read().split()[0])
            self.assertGreaterEqual(count, 4, f"crashes in the growth of {v}'s map")
        self.assertGreaterEqual(crashes, 4 * len(VOLUMES))
        self.assertEqual(list(rdftest.events(self.sys.cfg, "backup", 739)), [],
                         "no storage error: each growth, crashed or not, is done again")

    def test_insert_skipped_in_redo_as_duplicate_is_left_alone_by_undo(self):
        # Finding 13. setUp started no updater: nothing is applied yet.
        load = self.sys.load(10**6, clients=8, extra=["--mode", "insert", "--think-us", "300"])
        rdftest.wait_for(lambda: (rdftest.status(self.sys.backup, "receiver") or {})
                         .get("save_point_asn", 0) > 3000, 120, "the save point to pass ASN 3000")
        self.assertIsNone(load.p.poll(), "the load ended before the primary was killed")
        load.kill()
        self.sys.kill("extractor")
        time.sleep(1)
        mit = rdftest.image_records(self.sys.backup, "MIT")
        sp = [r["savepoint"] for r in mit if r.get("type") == "SAVEPOINT"][-1]
        open_txids = {o["txid"] for o in sp.get("open", [])}
        # The first volume a transaction without an outcome wrote to (which
        # one varies with the timing; DATA01 alone failed once).
        lost, volume = [], None
        for v in VOLUMES:
            lost = [r for r in rdftest.image_records(self.sys.backup, v.lstrip("$"))
                    if r.get("type") == "DATA" and r["txid"] in open_txids
                    and r["asn"] <= sp["asn"]]
            if lost:
                volume = v.lstrip("$")
                break
        self.assertTrue(lost, "a transaction without an outcome wrote to a volume")
        victim = lost[0]
        key = bytes.fromhex(victim["key"])
        # The backup already holds that key (as after an error 10 on a real
        # system): REDO skips the lost transaction's insert of it.
        vol = os.path.join(self.sys.backup, "volumes", volume)
        os.makedirs(vol, exist_ok=True)
        subprocess.run(["mdb_load", "-T", "-s", "LOAD", vol], input=key + b"\npre-existing\n",
                       check=True)
        rc, report, err = rdfcom_takeover(self.sys.cfg,
                                          log=os.path.join(self.sys.work, "takeover.log"))
        self.assertEqual(rc, 0, err)
        self.assertIn(victim["txid"], {t["txid"] for t in report["lost_transactions"]})
        skipped = [e for e in rdftest.events(self.sys.cfg, "backup", 961)
                   if int(e["fields"]["asn"]) == victim["asn"]]
        self.assertEqual(len(skipped), 1, "REDO skipped the insert as error 10")
        rows = rdftest.dump(vol, "LOAD")
        self.assertEqual(rows.get(key), b"pre-existing",
                         "UNDO leaves alone the row that REDO did not insert")
        # Every other record of the lost transactions is undone.
        others = {bytes.fromhex(r["key"]) for r in lost} - {key}
        self.assertFalse(others & set(rows))


    def test_takeover_redo_on_a_damaged_trail_fails_and_resumes_once_repaired(self):
        # Finding 21: takeover's REDO retried a damaged trail (and any lasting
        # storage error) for ever, so `rdfcom takeover` never returned. It
        # must fail with the reason (a damaged trail at once), and the
        # takeover issued again must resume. setUp started no updater.
        load = self.sys.load(10**6, clients=4, extra=["--mode", "insert"])
        rdftest.wait_for(lambda: (rdftest.status(self.sys.backup, "receiver") or {})
                         .get("save_point_asn", 0) > 8000, 120, "the save point to pass ASN 8000")
        load.kill()
        self.sys.kill("extractor")
        time.sleep(1)
        segs = rdftest.trail_segments(os.path.join(self.sys.backup, "imagetrails"), "DATA01")
        data = [r for r in rdftest.image_records(self.sys.backup, "DATA01")
                if r.get("type") == "DATA"]
        rec = data[len(data) // 2]
        seg = next(x for x in segs if x["segment"] == rec["segment"])
        # One byte inside a record halfway along the trail: damage, not a
        # torn tail.
        with open(seg["path"], "r+b") as f:
            at = rec["offset"] + rec["bytes"] // 2 + 8
            f.seek(at)
            good = f.read(1)
            f.seek(at)
            f.write(bytes([good[0] ^ 0xFF]))
        log = os.path.join(self.sys.work, "takeover.log")
        r = subprocess.run([rdftest.binary("rdfcom"), "--config", self.sys.cfg, "takeover",
                            "--yes", "--json"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("issue the takeover again", r.stderr)
        failed = rdftest.events(self.sys.cfg, "backup", 972)
        self.assertEqual([e["fields"]["volume"] for e in failed], ["$DATA01"])
        self.assertIn("DATA01", failed[0]["fields"]["error"])
        st = rdftest.status(self.sys.backup, "updater-DATA01")
        self.assertEqual(st["state"], "TAKEOVER_FAILED")
        # Repaired (the segment restored), the takeover issued again resumes.
        with open(seg["path"], "r+b") as f:
            f.seek(at)
            f.write(good)
        rc, report, err = rdfcom_takeover(self.sys.cfg, log=log)
        self.assertEqual(rc, 0, err)
        present, problems = rdftest.check_insert_transactions(self.sys.backup, K)
        self.assertEqual(problems, [], "every transaction on the backup is whole")
        self.assertTrue(present)


if __name__ == "__main__":
    unittest.main()
