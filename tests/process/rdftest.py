"""Helpers shared by rdf's process tests: paths to the built binaries, a
fresh copy of the example configuration, starting and stopping processes by
pid, and reading volumes with LMDB's own mdb_dump (never with our code)."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("RDF_BUILD_DIR", os.path.join(SRC, "build"))
BIN = os.path.join(BUILD, "bin")


def binary(name):
    path = os.path.join(BIN, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is not built (run scripts/setup)")
    return path


def set_fields(text, settings):
    """Sets fields of top-level blocks in a text-format configuration:
    settings maps "block.field" to a value (already in text-format syntax,
    e.g. 1048576 or '"x"'). An existing field is replaced, a missing one
    added, a missing block appended."""
    lines = text.splitlines()
    for path, value in settings.items():
        block, field = path.split(".", 1)
        start = next((i for i, l in enumerate(lines) if l.startswith(block + " {")), None)
        if start is None:
            lines += [f"{block} {{", f"  {field}: {value}", "}"]
            continue
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("}"))
        hit = next((i for i in range(start + 1, end)
                    if re.match(rf"\s*{field}\s*:", lines[i])), None)
        if hit is None:
            lines.insert(start + 1, f"  {field}: {value}")
        else:
            lines[hit] = f"  {field}: {value}"
    return "\n".join(lines) + "\n"


def fresh_system(settings=None, prefix="rdf-test."):
    """A temporary folder holding a copy of examples/loopback.textproto with
    `settings` applied (see set_fields). Returns (folder, config path)."""
    work = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    cfg = os.path.join(work, "rdf.textproto")
    with open(os.path.join(SRC, "examples", "loopback.textproto")) as f:
        text = f.read()
    with open(cfg, "w") as f:
        f.write(set_fields(text, settings or {}))
    return work, cfg


def remove(work):
    shutil.rmtree(work, ignore_errors=True)


def unescape(s):
    """mdb_dump -p escapes non-printing bytes (and backslash) as \\xx."""
    out = bytearray()
    i = 0
    while i < len(s):
        if s[i] == "\\":
            if s[i + 1] == "\\":
                out.append(0x5C)
                i += 2
            else:
                out.append(int(s[i + 1:i + 3], 16))
                i += 3
        else:
            out.extend(s[i].encode("latin-1"))
            i += 1
    return bytes(out)


def list_dbs(volume_dir):
    out = subprocess.run(["mdb_dump", "-l", volume_dir], check=True,
                         capture_output=True, text=True).stdout
    return [unescape(l).decode("latin-1") for l in out.splitlines() if l]


def dump(volume_dir, db):
    """The records of named database `db`, as {key bytes: value bytes}."""
    out = subprocess.run(["mdb_dump", "-p", "-s", db, volume_dir], check=True,
                         capture_output=True, text=True, errors="surrogateescape").stdout
    lines = out.splitlines()
    start = lines.index("HEADER=END") + 1
    records = {}
    i = start
    while i < len(lines) and lines[i] != "DATA=END":
        records[unescape(lines[i][1:])] = unescape(lines[i + 1][1:])
        i += 2
    return records


def user_files(volume_dir):
    """Every user file of a volume (bookkeeping databases, named __*, left
    out) as {name: {key: value}}."""
    return {db: dump(volume_dir, db) for db in list_dbs(volume_dir)
            if not db.startswith("__")}


def volume_dirs(data_dir):
    vols = os.path.join(data_dir, "volumes")
    if not os.path.isdir(vols):
        return {}
    return {"$" + v: os.path.join(vols, v) for v in sorted(os.listdir(vols))}


def check_insert_transactions(data_dir, rows_per_txn, volumes=None):
    """Counts records per transaction over the LOAD files of a node's volumes
    (insert mode: key <txid>:<i>, value <txid>:<K>:...). Returns
    (set of txids present, list of problems)."""
    count = {}
    problems = []
    for vol, path in volume_dirs(data_dir).items():
        if volumes is not None and vol not in volumes:
            continue
        if "LOAD" not in list_dbs(path):
            continue
        for k, v in dump(path, "LOAD").items():
            m = re.fullmatch(rb"(\d+):(\d+)", k)
            if not m:
                problems.append(f"{vol}: unexpected key {k!r}")
                continue
            txid = int(m.group(1))
            if not v.startswith(b"%d:%d:" % (txid, rows_per_txn)):
                problems.append(f"{vol}: key {k!r} has value {v[:30]!r}")
            count[txid] = count.get(txid, 0) + 1
    for txid, n in count.items():
        if n != rows_per_txn:
            problems.append(f"transaction {txid} has {n} of {rows_per_txn} records")
    return set(count), problems


def read_commit_log(path):
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        # A SIGKILL can cut the last line short: only whole lines count.
        text = f.read()
    lines = text.split("\n")
    return {int(l) for l in lines[:-1] if l}


class Process:
    """A started binary, stopped by its pid."""

    def __init__(self, args, log_path=None, env=None):
        self.log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE if log_path is None else self.log,
                                  stderr=self.log, env=env)
        self.pid = self.p.pid

    def _close(self):
        if self.log is not subprocess.DEVNULL:
            self.log.close()
        if self.p.stdout:
            self.p.stdout.close()

    def kill(self):
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.p.wait(timeout=30)
        self._close()

    def stop(self, timeout=30):
        if self.p.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()
        return self.p.returncode

    def wait(self, timeout):
        rc = self.p.wait(timeout=timeout)
        self._close()
        return rc


# --- Trails, read with rdf-trail-dump ------------------------------------------


class TrailDamage(Exception):
    """rdf-trail-dump stopped at damage: `records` holds what it read before,
    `message` its error (kDataLoss naming file and offset)."""

    def __init__(self, message, records):
        super().__init__(message)
        self.message = message
        self.records = records


def read_trail(dir, name, from_asn=0, backwards=False, limit=0, timeout=120):
    """The records of trail `name` in folder `dir`, as dicts (rdf-trail-dump
    --json: numbers as ints, bytes as hex strings, absent before/after None;
    save points have "type": "SAVEPOINT" and a "savepoint" dict). Reads to the
    physical end, so a trail being written may be read; a torn tail ends it.
    Damage raises TrailDamage; a missing trail raises FileNotFoundError."""
    import json
    args = [binary("rdf-trail-dump"), "--dir", dir, "--trail", name, "--json"]
    if from_asn:
        args += ["--from-asn", str(from_asn)]
    if backwards:
        args.append("--backwards")
    if limit:
        args += ["--limit", str(limit)]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    records = [json.loads(l) for l in r.stdout.splitlines() if l]
    if r.returncode != 0:
        message = r.stderr.strip()
        if "NOT_FOUND" in message:
            raise FileNotFoundError(message)
        raise TrailDamage(message, records)
    return records


def trail_segments(dir, name):
    """The segments of trail `name`: [{"segment", "first_asn", "bytes", "path"}]."""
    import json
    r = subprocess.run([binary("rdf-trail-dump"), "--dir", dir, "--trail", name, "--list",
                        "--json"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return [json.loads(l) for l in r.stdout.splitlines() if l]


def audit_records(data_dir, **kwargs):
    """The primary's audit trail (<data_dir>/audit, trail MAT), as read_trail."""
    return read_trail(os.path.join(data_dir, "audit"), "MAT", **kwargs)


def image_records(data_dir, trail, **kwargs):
    """A backup image trail (<data_dir>/imagetrails): "MIT", or a volume's
    trail named without its '$' ("DATA01"; "$DATA01" is accepted too)."""
    return read_trail(os.path.join(data_dir, "imagetrails"), trail.lstrip("$"), **kwargs)
