"""Helpers shared by rdf's process tests: paths to the built binaries, a
fresh copy of the example configuration, starting and stopping processes by
pid, and reading volumes with LMDB's own mdb_dump (never with our code)."""

import fcntl
import json
import os
import re
import shutil
import signal
import struct
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


def library(name):
    """A test library of build/lib (e.g. the LD_PRELOAD fault seams)."""
    path = os.path.join(BUILD, "lib", name)
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


def user_file_digests(volume_dir):
    """Every user file of a volume as {name: (records, SHA-256 of its
    records as mdb_dump prints them)}: streamed, for volumes too large to
    hold as dicts (user_files). Equal digests mean equal files: mdb_dump
    prints the records in key order, in hex."""
    import hashlib
    out = {}
    for db in list_dbs(volume_dir):
        if db.startswith("__"):
            continue
        h, lines, data = hashlib.sha256(), 0, False
        with subprocess.Popen(["mdb_dump", "-s", db, volume_dir], stdout=subprocess.PIPE) as p:
            for line in p.stdout:
                if line == b"HEADER=END\n":
                    data = True
                elif line == b"DATA=END\n":
                    data = False
                elif data:
                    h.update(line)
                    lines += 1
        if p.returncode != 0:
            raise RuntimeError(f"mdb_dump -s {db} {volume_dir} failed")
        out[db] = (lines // 2, h.hexdigest())
    return out


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


# --- A disk whose power can be cut ----------------------------------------------


class LoopDisk:
    """An ext4 file system of its own (a loop device over an image file in
    `work`), mounted at `path` (a node's data folder), so that a test can cut
    its power. Needs root."""

    def __init__(self, work, path, size=1 << 30):
        if os.geteuid() != 0:
            raise RuntimeError("a loop device needs root: run the test as root")
        self.path = path
        image = os.path.join(work, os.path.basename(path.rstrip("/")) + "-disk.img")
        with open(image, "wb") as f:
            f.truncate(size)
        subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
        self.device = subprocess.run(["losetup", "-f", "--show", image], check=True,
                                     capture_output=True, text=True).stdout.strip()
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", self.device, path], check=True)

    def cut_power(self, processes=()):
        """What a power cut leaves on the disk: the file system is shut down
        without flushing its journal (EXT4_IOC_SHUTDOWN, NOLOGFLUSH), so
        nothing that was not synced reaches the disk, not even the page
        cache's dirty pages. Then `processes` (rdftest.Process) die with
        SIGKILL, and the file system is mounted again (its journal replayed),
        as after the reboot."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, 0x8004587D, struct.pack("I", 2))  # EXT4_IOC_SHUTDOWN
        finally:
            os.close(fd)
        for p in processes:
            p.kill()
        # Children of those (a monitor's) die with them, a moment later.
        for _ in range(100):
            if subprocess.run(["umount", self.path], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.path} still busy 10 s after the power cut")
        subprocess.run(["mount", self.device, self.path], check=True)

    def remove(self):
        """Unmounts and frees the loop device (after every process using it stopped)."""
        subprocess.run(["umount", "-l", self.path])
        subprocess.run(["losetup", "-d", self.device])


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


def write_test_keys(work):
    """CURVE key files for both nodes of a fresh_system() (keys/primary.key,
    keys/backup.key, mode 0600), made with libzmq's zmq_curve_keypair through
    ctypes. Tests use this so they do not depend on rdfcom; the public keys
    are read from the key files (the configuration leaves them empty)."""
    import ctypes
    lib = ctypes.CDLL("libzmq.so.5")
    os.makedirs(os.path.join(work, "keys"), exist_ok=True)
    for node in ("primary", "backup"):
        pub = ctypes.create_string_buffer(41)
        sec = ctypes.create_string_buffer(41)
        if lib.zmq_curve_keypair(pub, sec) != 0:
            raise RuntimeError("zmq_curve_keypair failed")
        path = os.path.join(work, "keys", f"{node}.key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"public-key = {pub.value.decode()}\nsecret-key = {sec.value.decode()}\n")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(data_dir, process):
    """A process's published status (<data_dir>/status/<process>.json), or
    None while there is none."""
    import json
    try:
        with open(os.path.join(data_dir, "status", f"{process}.json")) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def lock_holder(data_dir, name):
    """The pid holding <data_dir>/locks/<name>.lock, as ProcessLock::HolderPid
    sees it (flock), or 0 when nobody does. A killed process holds its lock
    until it has closed its files, after /proc stops showing its command
    line (pgrep no longer finds it): wait on this, not on pgrep, before
    starting another copy."""
    try:
        fd = os.open(os.path.join(data_dir, "locks", f"{name}.lock"), os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return 0
    finally:
        os.close(fd)


def wait_for(predicate, timeout, what, detail=None):
    """Polls predicate() every 0.1 s for at most `timeout` seconds; raises
    AssertionError naming `what` when it never holds, with detail() (what
    the test saw instead: a status, a log's tail) when given."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    seen = f"\n{detail()}" if detail else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{seen}")


def log_tail(path, lines=30):
    """The last `lines` lines of a log file, for a failure's message."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except FileNotFoundError:
        return f"(no {path})"


def events(cfg, node, number=None):
    """A node's events, as dicts, from `rdfcom events --json`."""
    import json
    args = [binary("rdfcom"), "--config", cfg, "--node", node, "events", "--json"]
    if number is not None:
        args += ["--number", str(number)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


class ZmqClient:
    """A ZeroMQ DEALER through libzmq's C API (ctypes), for tests that play a
    misbehaving extractor. With keys=None it uses no CURVE."""
    ZMQ_DEALER, ZMQ_LINGER, ZMQ_RCVTIMEO = 5, 17, 27
    ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY, ZMQ_CURVE_SERVERKEY = 48, 49, 50

    def __init__(self, endpoint, server_key=None, public_key=None, secret_key=None):
        import ctypes
        self.c = ctypes
        lib = ctypes.CDLL("libzmq.so.5")
        lib.zmq_ctx_new.restype = ctypes.c_void_p
        lib.zmq_socket.restype = ctypes.c_void_p
        lib.zmq_socket.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.zmq_setsockopt.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        lib.zmq_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.zmq_send.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.zmq_recv.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.zmq_close.argtypes = [ctypes.c_void_p]
        lib.zmq_ctx_term.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.ctx = lib.zmq_ctx_new()
        self.sock = lib.zmq_socket(self.ctx, self.ZMQ_DEALER)
        self._setint(self.ZMQ_LINGER, 0)
        if server_key:
            for opt, key in ((self.ZMQ_CURVE_SERVERKEY, server_key),
                             (self.ZMQ_CURVE_PUBLICKEY, public_key),
                             (self.ZMQ_CURVE_SECRETKEY, secret_key)):
                b = key.encode()
                lib.zmq_setsockopt(self.sock, opt, b, len(b))
        lib.zmq_connect(self.sock, endpoint.encode())

    def _setint(self, opt, value):
        v = self.c.c_int(value)
        self.lib.zmq_setsockopt(self.sock, opt, self.c.byref(v), self.c.sizeof(v))

    def send(self, data):
        return self.lib.zmq_send(self.sock, data, len(data), 0)

    def recv(self, timeout_ms=2000):
        self._setint(self.ZMQ_RCVTIMEO, timeout_ms)
        buf = self.c.create_string_buffer(1 << 20)
        n = self.lib.zmq_recv(self.sock, buf, len(buf), 0)
        return None if n < 0 else buf.raw[:n]

    def close(self):
        self.lib.zmq_close(self.sock)
        self.lib.zmq_ctx_term(self.ctx)


def read_key_file(path):
    keys = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                keys[k.strip()] = v.strip()
    return keys["public-key"], keys["secret-key"]


# Shared fixtures: whole systems the process tests start (every test
# module imports them from here, never from another test module).

# Rows per transaction of rdf-load's insert mode in the tests, and the
# segment size of ShipSystem's trails.
K = 5
SEGMENT = 4 << 20


class ShipSystem:
    """A fresh two-node system in a temporary folder: keys, a pin so tmf
    keeps every audit segment (tmf.retain_count), and helpers to run the
    receiver, the extractor and rdf-load."""

    def __init__(self, extra=None):
        settings = {"trail.audit_segment_bytes": SEGMENT, "trail.image_segment_bytes": SEGMENT,
                    "tmf.retain_count": 100000}
        settings.update(extra or {})
        self.work, self.cfg = fresh_system(settings, prefix="rdf-ship.")
        write_test_keys(self.work)
        # A port of its own, so tests can run in parallel (ctest -j).
        self.audit_port = free_port()
        with open(self.cfg) as f:
            text = f.read()
        assert "audit_port: 17420" in text
        with open(self.cfg, "w") as f:
            f.write(text.replace("audit_port: 17420", f"audit_port: {self.audit_port}"))
        self.endpoint = f"tcp://127.0.0.1:{self.audit_port}"
        self.primary = os.path.join(self.work, "primary")
        self.backup = os.path.join(self.work, "backup")
        self.procs = {}
        self.loads = []  # every rdf-load started: stopped by stop_all if still running
        self.ext_cfg = self.cfg

    def start(self, name, cfg=None, env=None):
        """Starts "receiver", "extractor" or "updater-$DATA01" (etc.)."""
        args = [binary({"receiver": "rdf-receiver", "extractor": "rdf-extractor"}.get(
            name, "rdf-updater")), "--config",
            cfg or (self.ext_cfg if name == "extractor" else self.cfg)]
        if name.startswith("updater-"):
            args += ["--volume", name[len("updater-"):]]
        p = Process(args, log_path=os.path.join(self.work, f"{name}.log"), env=env)
        self.procs[name] = p
        return p

    def kill(self, name):
        self.procs.pop(name).kill()

    def stop_all(self):
        for p in list(self.procs.values()):
            p.stop()
        self.procs.clear()
        # A load a failed test left running (its data directory is removed
        # next, and it would never finish) is killed by its pid.
        for p in self.loads:
            if p.p.poll() is None:
                p.kill()
        self.loads.clear()

    def load(self, txns, clients=4, extra=()):
        p = Process([binary("rdf-load"), "--config", self.cfg, "--txns",
                             str(txns), "--rows-per-txn", str(K), "--clients", str(clients),
                             "--quiet", *extra],
                            log_path=os.path.join(self.work, "load.log"))
        self.loads.append(p)
        return p

    def recover_primary(self):
        """Reopens the primary after a SIGKILLed load: tmf makes the audit
        tail durable and backs out open transactions."""
        return Process([binary("rdf-load"), "--config", self.cfg, "--txns", "0"],
                               log_path=os.path.join(self.work, "load.log")).wait(120)

    def audit_end(self):
        recs = read_trail(os.path.join(self.primary, "audit"), "MAT")
        return recs[-1]["asn"] if recs else 0

    def wait_drained(self, timeout=120):
        end = self.audit_end()
        try:
            wait_for(lambda: (status(self.backup, "receiver") or {}).get(
                "save_point_asn", 0) >= end, timeout, f"the save point to reach ASN {end}")
        except AssertionError:
            self.diagnose()
            raise

    def diagnose(self):
        """Prints what the processes said, for a failed wait."""
        print("extractor status:", status(self.primary, "extractor"))
        print("receiver status:", status(self.backup, "receiver"))
        for name in ("extractor", "receiver"):
            path = os.path.join(self.work, f"{name}.log")
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    print(f"--- {name}.log (tail)\n" + "".join(f.readlines()[-15:]))

    def cleanup(self):
        self.stop_all()
        if os.environ.get("RDF_KEEP"):
            print("kept", self.work)
        else:
            remove(self.work)


class MonitorSystem:
    """A fresh two-node system with ports of its own, keys, and a monitor
    per node."""

    def __init__(self, settings=None):
        base = {"trail.audit_segment_bytes": 1 << 20, "trail.image_segment_bytes": 1 << 20,
                "purger.interval_ms": 1000}
        base.update(settings or {})
        self.work, self.cfg = fresh_system(base, prefix="rdf-monitor.")
        write_test_keys(self.work)
        with open(self.cfg) as f:
            text = f.read()
        self.ports = {}
        for old in ("17410", "17411", "17420", "17421", "17422"):
            self.ports[old] = free_port()
            assert f": {old}" in text
            text = re.sub(rf": {old}\b", f": {self.ports[old]}", text)
        # Events at or above ERROR go to a file through the notify command.
        self.notified = os.path.join(self.work, "notified.jsonl")
        text = set_fields(text, {"notify.command": f'"cat >> {self.notified}"',
                                         "notify.min_severity": '"ERROR"'})
        with open(self.cfg, "w") as f:
            f.write(text)
        self.primary = os.path.join(self.work, "primary")
        self.backup = os.path.join(self.work, "backup")
        self.monitors = {}
        self.others = []

    def metrics_port(self, node):
        return self.ports["17411" if node == "primary" else "17422"]

    def start_monitor(self, node):
        self.monitors[node] = Process(
            [binary("rdf-monitor"), "--config", self.cfg, "--node", node],
            log_path=os.path.join(self.work, f"monitor-{node}.log"))
        return self.monitors[node]

    def start(self):
        self.start_monitor("backup")
        self.start_monitor("primary")
        self.wait_state("NORMAL")

    def rdfcom(self, *args, timeout=180, check=False):
        r = subprocess.run([binary("rdfcom"), "--config", self.cfg, *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"rdfcom {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def status(self):
        r = self.rdfcom("status", "--json", timeout=30)
        return json.loads(r.stdout) if r.stdout.strip() else None

    def wait_state(self, state, timeout=60):
        return wait_for(lambda: (self.status() or {}).get("state") == state, timeout,
                                f"system state {state} (last: {self.status()})")

    def drained(self, s):
        end = s["primary"]["audit_end_asn"]
        return (end > 0 and s["receiver"]["save_point_asn"] >= end and
                all(u["applied_asn"] >= end for u in s["updaters"]))

    def load(self, txns, clients=4, extra=()):
        p = Process([binary("rdf-load"), "--config", self.cfg, "--txns",
                             str(txns), "--rows-per-txn", str(K), "--clients", str(clients),
                             "--quiet", *extra], log_path=os.path.join(self.work, "load.log"))
        self.others.append(p)
        return p

    def running(self, program):
        """pids of `program` running with this system's configuration."""
        out = subprocess.run(["pgrep", "-f", f"{program} --config {self.cfg}"],
                             capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]

    def wait_processes(self, receivers, updaters, purgers, timeout=30):
        """Waits until exactly these many of the backup's programs run (a
        child the monitor forked shows under its own name only once it has
        exec'd, which can lag NORMAL on a busy machine): their pids."""
        want = {"rdf-receiver": receivers, "rdf-updater": updaters, "rdf-purger": purgers}
        def check():
            got = {p: self.running(p) for p in want}
            return got if {p: len(v) for p, v in got.items()} == want else None
        return wait_for(check, timeout, f"running processes {want}")

    def cleanup(self):
        for p in self.others:
            p.stop()
        for p in self.monitors.values():
            p.stop(timeout=60)
        if os.environ.get("RDF_KEEP"):
            print("kept", self.work)
        else:
            remove(self.work)


def rdfcom_takeover(cfg, env_extra=None, log=None, extra=(), timeout=300):
    env = dict(os.environ)
    env.update(env_extra or {})
    r = subprocess.run([binary("rdfcom"), "--config", cfg, "takeover", "--yes", "--json",
                        *extra], capture_output=True, text=True, timeout=timeout, env=env)
    if log:
        with open(log, "a") as f:
            f.write(f"--- rc {r.returncode}\n{r.stderr}\n{r.stdout}\n")
    report = json.loads(r.stdout) if r.returncode == 0 else None
    return r.returncode, report, r.stderr
