#!/usr/bin/env python3
"""rdf-trail-dump on a real audit trail written by rdf-load: every record is
there once, in strictly increasing ASN order, with 5 DATA records per
transaction and one outcome each; text and JSON agree; a torn tail ends the
dump quietly; a damaged byte in the middle of a segment prints what was read
before it and exits 1 naming the file and offset. A hand-made MIT shows save
point frames (type 16) and unknown frame types."""

import os
import shutil
import struct
import subprocess
import unittest

import rdftest

TXNS = 50
ROWS = 5  # rdf-load's default --rows-per-txn
HEADER_SIZE = 128


def dump(*args, timeout=60):
    return subprocess.run([rdftest.binary("rdf-trail-dump"), *args], capture_output=True,
                          text=True, timeout=timeout)


# --- A minimal trail writer (docs/trail-format.md), for frames no process here
# writes yet: masked CRC32C, segment header, frames.

def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def masked_crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    c ^= 0xFFFFFFFF
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def segment_header(name, segment, first_asn):
    h = b"RDFTRAIL" + struct.pack("<IIQQQq", 1, HEADER_SIZE, segment, first_asn, 0, 0)
    h += name.encode().ljust(64, b"\0") + b"\0" * 12
    return h + struct.pack("<I", masked_crc32c(h))


def frame(asn, type, payload):
    head = struct.pack("<QB3x", asn, type)
    body = struct.pack("<I", len(payload)) + head + payload
    return struct.pack("<I", masked_crc32c(body)) + body + struct.pack("<I", len(payload))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_int(field, value):
    return varint(field << 3) + varint(value)


def pb_bytes(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


class TrailDumpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work, cls.cfg = rdftest.fresh_system(prefix="rdf-trail-dump.")
        r = subprocess.run([rdftest.binary("rdf-load"), "--config", cls.cfg, "--txns", str(TXNS),
                            "--clients", "2", "--quiet"], capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        cls.primary = os.path.join(cls.work, "primary")
        cls.audit_dir = os.path.join(cls.primary, "audit")
        cls.records = rdftest.audit_records(cls.primary)

    @classmethod
    def tearDownClass(cls):
        rdftest.remove(cls.work)

    def copy_audit(self):
        """A private copy of the audit folder to damage."""
        dst = os.path.join(self.work, "audit-copy-" + self._testMethodName)
        shutil.copytree(self.audit_dir, dst)
        return dst

    def segment_path(self, dir):
        return os.path.join(dir, "MAT.0000000001")

    def test_every_transaction_has_its_records_and_one_outcome(self):
        types = [r["type"] for r in self.records]
        outcomes = {r["txid"]: r["type"] for r in self.records if r["type"] in ("COMMIT", "ABORT")}
        self.assertEqual(types.count("COMMIT") + types.count("ABORT"), TXNS)
        self.assertEqual(len(outcomes), TXNS)
        data = {}
        for r in self.records:
            if r["type"] == "DATA" and not r["compensation"]:
                data[r["txid"]] = data.get(r["txid"], 0) + 1
                self.assertEqual(r["op"], "INSERT")
                self.assertIsNone(r["before"])
                self.assertTrue(r["volume"].startswith("$DATA"))
                self.assertEqual(r["file"], "LOAD")
                key = bytes.fromhex(r["key"]).decode()
                self.assertTrue(key.startswith("%d:" % r["txid"]), key)
                self.assertTrue(bytes.fromhex(r["after"]).startswith(b"%d:%d:" % (r["txid"], ROWS)))
        committed = [t for t, o in outcomes.items() if o == "COMMIT"]
        for txid in committed:
            self.assertEqual(data.get(txid), ROWS, txid)
        self.assertEqual(set(data) - set(outcomes), set())

    def test_asns_strictly_increase_and_positions_follow(self):
        asns = [r["asn"] for r in self.records]
        self.assertTrue(all(isinstance(a, int) for a in asns))
        self.assertTrue(all(a < b for a, b in zip(asns, asns[1:])), asns)
        offsets = [(r["segment"], r["offset"]) for r in self.records]
        self.assertEqual(offsets, sorted(offsets))
        self.assertEqual(offsets[0], (1, HEADER_SIZE))

    def test_text_lines_agree_with_json(self):
        r = dump("--dir", self.audit_dir, "--trail", "MAT")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), len(self.records))
        for line, rec in zip(lines, self.records):
            cols = line.split("\t")
            self.assertEqual(len(cols), 9, line)
            self.assertEqual(int(cols[0]), rec["asn"])
            self.assertEqual(cols[1], rec["type"])
            self.assertEqual(int(cols[2]), rec["txid"])
            self.assertEqual(cols[5], rec["key"] or "-")
            self.assertEqual(cols[6], rec["before"] if rec["before"] is not None else "-")
            self.assertEqual(cols[7], rec["after"] if rec["after"] is not None else "-")
            self.assertEqual(cols[8], "1" if rec["compensation"] else "0")

    def test_from_asn_backwards_and_limit(self):
        mid = self.records[len(self.records) // 2]["asn"]
        fwd = rdftest.audit_records(self.primary, from_asn=mid, limit=3)
        self.assertEqual([r["asn"] for r in fwd],
                         [r["asn"] for r in self.records if r["asn"] >= mid][:3])
        back = rdftest.audit_records(self.primary, from_asn=mid, backwards=True, limit=3)
        self.assertEqual([r["asn"] for r in back],
                         [r["asn"] for r in reversed(self.records) if r["asn"] <= mid][:3])
        whole = rdftest.audit_records(self.primary, backwards=True)
        self.assertEqual(whole, list(reversed(self.records)))
        self.assertEqual(rdftest.audit_records(self.primary, from_asn=10**12), [])

    def test_list_shows_the_segments(self):
        segs = rdftest.trail_segments(self.audit_dir, "MAT")
        self.assertEqual(len(segs), 1)
        self.assertEqual(segs[0]["segment"], 1)
        self.assertEqual(segs[0]["first_asn"], 1)
        self.assertEqual(segs[0]["bytes"], os.path.getsize(self.segment_path(self.audit_dir)))

    def test_damage_in_the_middle_prints_what_was_read_then_exits_one(self):
        dir = self.copy_audit()
        victim = self.records[len(self.records) // 2]
        with open(self.segment_path(dir), "r+b") as f:
            f.seek(victim["offset"] + 20)  # first payload byte
            b = f.read(1)
            f.seek(victim["offset"] + 20)
            f.write(bytes([b[0] ^ 0x5A]))
        r = dump("--dir", dir, "--trail", "MAT")
        self.assertEqual(r.returncode, 1)
        self.assertIn("DATA_LOSS", r.stderr)
        self.assertIn("%s offset %d" % (self.segment_path(dir), victim["offset"]), r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), len(self.records) // 2)
        with self.assertRaises(rdftest.TrailDamage) as e:
            rdftest.read_trail(dir, "MAT")
        self.assertEqual(e.exception.records, self.records[:len(self.records) // 2])

    def test_torn_tail_ends_the_dump_quietly(self):
        dir = self.copy_audit()
        last = self.records[-1]
        with open(self.segment_path(dir), "r+b") as f:
            f.seek(last["offset"] + 20 + last["bytes"])  # its trailer
            f.write(b"\0\0\0\0")
        self.assertEqual(rdftest.read_trail(dir, "MAT"), self.records[:-1])

    def test_missing_trail_exits_one_and_help_exits_zero(self):
        r = dump("--dir", self.audit_dir, "--trail", "NOPE")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)
        with self.assertRaises(FileNotFoundError):
            rdftest.image_records(self.primary, "$DATA01")
        r = dump("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: rdf-trail-dump", r.stdout)
        self.assertEqual(dump("--trail", "MAT").returncode, 2)

    def test_save_point_and_unknown_frames_in_an_image_trail(self):
        backup = os.path.join(self.work, "backup-" + self._testMethodName)
        trails = os.path.join(backup, "imagetrails")
        os.makedirs(trails)
        commit = pb_int(1, 1) + pb_int(4, 7) + pb_int(5, 2)  # version, txid, COMMIT
        trail_end = pb_bytes(1, b"MIT") + pb_int(2, 1) + pb_int(3, 4096) + pb_int(4, 10)
        open_txn = pb_int(1, 9) + pb_int(2, 5) + pb_int(3, 2)
        sp = (pb_int(1, 1) + pb_int(2, 10) + pb_int(3, 123) + pb_int(4, 12) +
              pb_bytes(7, trail_end) + pb_bytes(8, open_txn) + pb_int(9, 5) + pb_int(10, 3))
        with open(os.path.join(trails, "MIT.0000000001"), "wb") as f:
            f.write(segment_header("MIT", 1, 10) + frame(10, 2, commit) + frame(11, 16, sp) +
                    frame(12, 17, b"xyz") + b"\0" * 4096)
        recs = rdftest.image_records(backup, "MIT")
        self.assertEqual([r["frame_type"] for r in recs], [2, 16, 17])
        self.assertEqual([r["asn"] for r in recs], [10, 11, 12])
        self.assertEqual(recs[0]["type"], "COMMIT")
        self.assertEqual(recs[0]["txid"], 7)
        self.assertEqual(recs[1]["type"], "SAVEPOINT")
        s = recs[1]["savepoint"]
        self.assertEqual((s["asn"], s["time_us"], s["audit_end_asn"], s["next_seq"]),
                         (10, 123, 12, 3))
        self.assertEqual(s["trails"], [{"trail": "MIT", "segment": 1, "offset": 4096, "asn": 10,
                                       "records": 0, "bytes": 0}])
        self.assertEqual(s["open"], [{"txid": 9, "first_asn": 5, "records": 2}])
        self.assertEqual(s["oldest_open_asn"], 5)
        self.assertEqual(recs[2]["type"], "FRAME")
        r = dump("--dir", trails, "--trail", "MIT")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertTrue(lines[1].startswith("SAVEPOINT asn=10 frame_asn=11 "), lines[1])
        self.assertIn(" trails=MIT:1:4096:10 ", lines[1])
        self.assertTrue(lines[1].endswith(" open=9:5:2"), lines[1])
        self.assertEqual(lines[2], "FRAME asn=12 type=17 bytes=3")


if __name__ == "__main__":
    unittest.main()
