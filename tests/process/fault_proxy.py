#!/usr/bin/env python3
"""A fault-injecting TCP proxy for loopback tests (tc netem is not available
here): it forwards connections from a local port to a local target and, on
command, cuts every connection at once, refuses new ones until restored, or
delays every chunk it forwards.

    p = FaultProxy(listen_port=0, target=("127.0.0.1", 17420))
    p.start()          # p.port is the listening port
    p.cut()            # reset every open connection; refuse new ones ...
    p.restore()        # ... until restore()
    p.set_delay(50)    # every chunk, both directions, 50 ms later (order kept)
    p.stats()          # {"bytes_to_target", "bytes_to_client", "accepted", ...}
    p.stop()           # closes everything; bounded

As a script, for manual use and the chaos campaign:

    python3 fault_proxy.py --listen 17520 --target 127.0.0.1:17420

prints "listening 127.0.0.1:PORT", then reads commands on stdin, one a line:
"cut", "restore", "delay MS", "stats" (prints one JSON line), "quit" (or end
of input); each command answers "ok" (or "error: ...") on stdout.

Design: one event-loop thread (a daemon) owns every socket, so no socket is
ever closed under another thread's feet; the public methods post commands to
it and wait (bounded) until it has carried them out. Each direction of a
connection keeps a queue of (due time, chunk); a chunk read at time t is
sent at max(t + delay, the previous chunk's due time), which keeps order when
the delay changes. Reading stops while a direction holds more than
MAX_BUFFERED bytes (back-pressure, bounded memory). "Cut" is an abortive
close (RST, SO_LINGER 0) of both sides; a connection accepted while cut is
reset at once. Only 127.0.0.0/8 addresses may be listened on or targeted.

Python standard library only."""

import argparse
import collections
import errno
import ipaddress
import json
import selectors
import socket
import struct
import sys
import threading
import time

CHUNK = 64 * 1024
MAX_BUFFERED = 1 << 20       # per direction
MAX_WAIT_S = 0.1             # the loop wakes at least this often
COMMAND_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5.0
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def loopback_address(host):
    """`host` resolved to an IPv4 address in 127.0.0.0/8; ValueError if it
    resolves to anything else."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ValueError(f"cannot resolve {host!r}: {e}") from None
    addrs = sorted({info[4][0] for info in infos})
    bad = [a for a in addrs if ipaddress.ip_address(a) not in LOOPBACK]
    if not addrs or bad:
        raise ValueError(f"{host!r} is not a loopback address (127.0.0.0/8 only): {addrs}")
    return addrs[0]


def _reset(sock):
    """Abortive close: the peer sees a reset, not an orderly end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class _Direction:
    """One way of a connection: bytes read from `src`, to be written to `dst`."""

    def __init__(self, src, dst):
        self.src = src
        self.dst = dst
        self.pending = collections.deque()  # (due, bytes); b"" is the end of input
        self.out = bytearray()               # due, not yet written
        self.buffered = 0                    # bytes in pending + out
        self.last_due = 0.0
        self.eof_read = False                # src has ended
        self.eof_due = False                 # ... and that end is due at dst
        self.shut = False                    # dst has been shut for writing

    def reading(self):
        return not self.eof_read and self.buffered < MAX_BUFFERED


class _Connection:
    def __init__(self, client, server):
        self.client = client
        self.server = server
        self.connected = False
        self.connect_deadline = time.monotonic() + CONNECT_TIMEOUT_S
        self.up = _Direction(client, server)    # client -> target
        self.down = _Direction(server, client)  # target -> client
        self.closed = False


class FaultProxy:
    def __init__(self, listen_port=0, target=("127.0.0.1", 0), listen_host="127.0.0.1"):
        self.target = (loopback_address(target[0]), int(target[1]))
        self.listen_host = loopback_address(listen_host)
        self.listen_port = int(listen_port)
        self.port = None
        self._delay_s = 0.0
        self._cut = False
        self._stats = {"bytes_to_target": 0, "bytes_to_client": 0, "accepted": 0,
                       "refused": 0, "cuts": 0, "failed_connects": 0}
        self._conns = []
        self._commands = collections.deque()
        self._stopping = threading.Event()
        self._thread = None
        self._sel = None
        self._listener = None
        self._wake_r = self._wake_w = None

    # --- public API (any thread) ---------------------------------------------

    def start(self):
        """Binds the listening socket (so self.port is known on return) and
        starts the event loop."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((self.listen_host, self.listen_port))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name=f"fault-proxy-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def cut(self):
        """Resets every open connection and refuses new ones until restore()."""
        self._call(self._do_cut)

    def restore(self):
        """Lets new connections through again."""
        self._call(self._do_restore)

    def set_delay(self, ms):
        """Every chunk read from now on is forwarded `ms` milliseconds later
        (both directions, order kept)."""
        if ms < 0:
            raise ValueError("delay must not be negative")
        self._call(lambda: setattr(self, "_delay_s", ms / 1000.0))

    def stats(self):
        return self._call(self._do_stats)

    def stop(self, timeout=COMMAND_TIMEOUT_S):
        """Closes every socket and joins the loop thread; returns within about
        `timeout` seconds whatever the state."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("fault proxy loop did not stop")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- commands, run on the loop thread -------------------------------------

    def _call(self, fn):
        """Runs fn on the loop thread and returns its result (directly when
        the loop is not running)."""
        thread = self._thread
        if thread is not None and self._stopping.is_set():
            thread.join(COMMAND_TIMEOUT_S)
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            return fn()
        done = threading.Event()
        box = {}

        def run():
            try:
                box["value"] = fn()
            except Exception as e:  # handed back to the caller
                box["error"] = e
            done.set()

        self._commands.append(run)
        self._wake()
        if not done.wait(COMMAND_TIMEOUT_S):
            raise TimeoutError("fault proxy did not answer")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already awake, or stopped

    def _do_cut(self):
        self._cut = True
        self._stats["cuts"] += 1
        for c in list(self._conns):
            self._close(c, abort=True)

    def _do_restore(self):
        self._cut = False

    def _do_stats(self):
        s = dict(self._stats)
        s.update(open=len(self._conns), cut=self._cut, delay_ms=round(self._delay_s * 1000))
        return s

    # --- the event loop --------------------------------------------------------

    def _run(self):
        try:
            while not self._stopping.is_set():
                for key, mask in self._sel.select(self._wait_time()):
                    self._on_event(key, mask)
                now = time.monotonic()
                for c in list(self._conns):
                    self._advance(c, now)
        finally:
            self._shutdown()

    def _wait_time(self):
        wait = MAX_WAIT_S
        now = time.monotonic()
        for c in self._conns:
            for d in (c.up, c.down):
                if d.pending:
                    wait = min(wait, d.pending[0][0] - now)
        return max(wait, 0.0)

    def _on_event(self, key, mask):
        if key.data == "wake":
            try:
                while self._wake_r.recv(4096):
                    pass
            except BlockingIOError:
                pass
            while self._commands:
                self._commands.popleft()()
        elif key.data == "listen":
            self._accept()
        else:
            conn, sock = key.data
            if conn.closed:
                return
            if mask & selectors.EVENT_WRITE:
                self._on_writable(conn, sock)
            if mask & selectors.EVENT_READ and not conn.closed:
                self._on_readable(conn, sock)

    def _accept(self):
        for _ in range(64):  # bounded; the rest on the next turn
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if self._cut:
                self._stats["refused"] += 1
                _reset(client)
                continue
            self._stats["accepted"] += 1
            client.setblocking(False)
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setblocking(False)
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(client, server)
            self._conns.append(conn)
            err = server.connect_ex(self.target)
            if err not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
                self._stats["failed_connects"] += 1
                self._close(conn, abort=True)
                continue
            self._register(conn)

    def _on_writable(self, conn, sock):
        if sock is conn.server and not conn.connected:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                self._stats["failed_connects"] += 1
                self._close(conn, abort=True)
                return
            conn.connected = True
            return
        d = conn.up if sock is conn.server else conn.down
        if not d.out:
            return
        try:
            n = sock.send(d.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn, abort=True)
            return
        del d.out[:n]
        d.buffered -= n
        self._stats["bytes_to_target" if d is conn.up else "bytes_to_client"] += n

    def _on_readable(self, conn, sock):
        d = conn.up if sock is conn.client else conn.down
        try:
            data = sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn, abort=True)  # a reset travels on as a reset
            return
        due = max(time.monotonic() + self._delay_s, d.last_due)
        d.last_due = due
        d.pending.append((due, data))
        if data:
            d.buffered += len(data)
        else:
            d.eof_read = True

    def _advance(self, conn, now):
        """Moves due chunks to the output buffers, delivers ends of input,
        closes a finished or timed-out connection, and updates interest."""
        if conn.closed:
            return
        if not conn.connected and now > conn.connect_deadline:
            self._stats["failed_connects"] += 1
            self._close(conn, abort=True)
            return
        for d in (conn.up, conn.down):
            while d.pending and d.pending[0][0] <= now:
                _, data = d.pending.popleft()
                if data:
                    d.out += data
                else:
                    d.eof_due = True
            if d.eof_due and not d.out and not d.shut and conn.connected:
                try:
                    d.dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                d.shut = True
        if conn.up.shut and conn.down.shut:
            self._close(conn, abort=False)
            return
        self._register(conn)

    def _register(self, conn):
        up, down = conn.up, conn.down
        client_events = (selectors.EVENT_READ if up.reading() else 0) | \
                        (selectors.EVENT_WRITE if down.out else 0)
        if conn.connected:
            server_events = (selectors.EVENT_READ if down.reading() else 0) | \
                            (selectors.EVENT_WRITE if up.out else 0)
        else:
            server_events = selectors.EVENT_WRITE  # connect completion
        self._interest(conn, conn.client, client_events)
        self._interest(conn, conn.server, server_events)

    def _interest(self, conn, sock, events):
        try:
            key = self._sel.get_key(sock)
        except KeyError:
            key = None
        if key is None:
            if events:
                self._sel.register(sock, events, (conn, sock))
        elif not events:
            self._sel.unregister(sock)
        elif key.events != events:
            self._sel.modify(sock, events, (conn, sock))

    def _close(self, conn, abort):
        if conn.closed:
            return
        conn.closed = True
        for sock in (conn.client, conn.server):
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            if abort:
                _reset(sock)
            else:
                sock.close()
        if conn in self._conns:
            self._conns.remove(conn)

    def _shutdown(self):
        for c in list(self._conns):
            self._close(c, abort=True)
        for s in (self._listener, self._wake_r, self._wake_w):
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self._sel.close()
        # Commands that raced with stop still get an answer.
        while self._commands:
            self._commands.popleft()()


def _parse_target(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Fault-injecting TCP proxy for loopback tests. Commands on stdin, one a "
                    "line: cut | restore | delay MS | stats | quit.")
    ap.add_argument("--listen", type=int, default=0, help="port to listen on (0: any free)")
    ap.add_argument("--listen-host", default="127.0.0.1", help="loopback address to listen on")
    ap.add_argument("--target", type=_parse_target, required=True,
                    help="HOST:PORT to forward to (127.0.0.0/8 only)")
    args = ap.parse_args(argv)
    try:
        proxy = FaultProxy(args.listen, args.target, args.listen_host)
        proxy.start()
    except (ValueError, OSError) as e:
        print(f"fault_proxy: {e}", file=sys.stderr)
        return 1
    print(f"listening {proxy.listen_host}:{proxy.port}", flush=True)
    try:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            try:
                if words == ["quit"]:
                    break
                if words == ["cut"]:
                    proxy.cut()
                elif words == ["restore"]:
                    proxy.restore()
                elif len(words) == 2 and words[0] == "delay":
                    proxy.set_delay(float(words[1]))
                elif words == ["stats"]:
                    print(json.dumps(proxy.stats(), sort_keys=True), flush=True)
                else:
                    raise ValueError(f"unknown command {line.strip()!r}")
                print("ok", flush=True)
            except (ValueError, TimeoutError) as e:
                print(f"error: {e}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
