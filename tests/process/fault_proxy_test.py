#!/usr/bin/env python3
"""fault_proxy.FaultProxy between a client and an echo server on loopback:
data passes both ways in order; cut drops the open connections and refuses
new ones until restore; a delay is observed on the round trip; stop is
bounded even with connections open and data in flight; only loopback targets
are accepted; the script form obeys its stdin commands."""

import os
import random
import socket
import subprocess
import sys
import threading
import time
import unittest

from fault_proxy import FaultProxy

HERE = os.path.dirname(os.path.abspath(__file__))


class EchoServer:
    """Echoes every connection until its peer ends it; daemon threads whose
    loops all wake every 0.1 s to notice stop()."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _echo(self, conn):
        conn.settimeout(0.1)
        with conn:
            while not self.stopping.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(2)
        self.sock.close()


def connect(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def round_trip(s, data):
    """Sends data and reads the same number of bytes back."""
    s.sendall(data)
    got = bytearray()
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return bytes(got)


def is_dropped(s, timeout=2):
    """True when the connection ends (EOF or reset) within `timeout` and
    echoes nothing."""
    s.settimeout(timeout)
    try:
        s.sendall(b"ping")
        return s.recv(10) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def new_connection_is_dropped(port):
    """True when a new connection is reset (during the handshake or after)
    or ended without echoing anything."""
    try:
        s = connect(port)
    except (ConnectionResetError, ConnectionRefusedError):
        return True
    with s:
        return is_dropped(s)


class FaultProxyTest(unittest.TestCase):
    def setUp(self):
        self.echo = EchoServer()
        self.proxy = FaultProxy(listen_port=0, target=("127.0.0.1", self.echo.port))
        self.proxy.start()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        self.proxy.stop()
        self.echo.stop()

    def client(self):
        s = connect(self.proxy.port)
        self.socks.append(s)
        return s

    def test_data_passes_both_ways_in_order(self):
        data = random.Random(1).randbytes(3 << 20)
        s = self.client()
        self.assertEqual(round_trip(s, data), data)
        self.assertEqual(round_trip(self.client(), b"hello"), b"hello")
        st = self.proxy.stats()
        self.assertEqual(st["bytes_to_target"], len(data) + 5)
        self.assertEqual(st["bytes_to_client"], len(data) + 5)
        self.assertEqual(st["accepted"], 2)
        self.assertEqual(st["open"], 2)

    def test_end_of_input_is_passed_on(self):
        s = self.client()
        s.sendall(b"last words")
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        got = b""
        while chunk := s.recv(100):
            got += chunk
        self.assertEqual(got, b"last words")  # then EOF: the echo server ended too

    def test_cut_drops_connections_and_refuses_new_ones_until_restore(self):
        a, b = self.client(), self.client()
        self.assertEqual(round_trip(a, b"a"), b"a")
        self.assertEqual(round_trip(b, b"b"), b"b")
        self.proxy.cut()
        self.assertTrue(is_dropped(a))
        self.assertTrue(is_dropped(b))
        self.assertTrue(new_connection_is_dropped(self.proxy.port))
        self.assertEqual(self.proxy.stats()["open"], 0)
        self.proxy.restore()
        self.assertEqual(round_trip(self.client(), b"again"), b"again")
        st = self.proxy.stats()
        self.assertEqual((st["cuts"], st["refused"], st["accepted"]), (1, 1, 3))

    def test_delay_is_observed_both_ways_and_can_be_lifted(self):
        s = self.client()
        self.assertEqual(round_trip(s, b"warm"), b"warm")
        self.proxy.set_delay(200)
        start = time.monotonic()
        self.assertEqual(round_trip(s, b"slow"), b"slow")
        self.assertGreaterEqual(time.monotonic() - start, 0.18 * 2)
        # Chunks sent apart arrive in order, each delayed.
        for i in range(5):
            s.sendall(b"%d," % i)
            time.sleep(0.01)
        got = b""
        while len(got) < 10:
            got += s.recv(100)
        self.assertEqual(got, b"0,1,2,3,4,")
        self.proxy.set_delay(0)
        start = time.monotonic()
        self.assertEqual(round_trip(s, b"fast"), b"fast")
        self.assertLess(time.monotonic() - start, 0.25)

    def test_stop_is_bounded_with_connections_open_and_data_in_flight(self):
        s = self.client()
        self.assertEqual(round_trip(s, b"x"), b"x")
        self.proxy.set_delay(10_000)
        s.sendall(b"held back")
        start = time.monotonic()
        self.proxy.stop()
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertFalse(self.proxy._thread.is_alive())
        self.assertTrue(is_dropped(s))
        with self.assertRaises(ConnectionRefusedError):
            connect(self.proxy.port)

    def test_a_target_that_refuses_resets_the_client(self):
        port = self.proxy.port
        self.echo.stop()
        self.echo = EchoServer()  # tearDown stops this one
        dead = FaultProxy(target=("127.0.0.1", port))  # nothing will listen there...
        dead.start()
        self.proxy.stop()  # ...once the first proxy is gone
        try:
            self.assertTrue(new_connection_is_dropped(dead.port))
            self.assertEqual(dead.stats()["failed_connects"], 1)
        finally:
            dead.stop()

    def test_only_loopback_targets(self):
        for host in ("10.0.0.1", "192.168.1.1", "8.8.8.8"):
            with self.assertRaisesRegex(ValueError, "loopback"):
                FaultProxy(target=(host, 80))
        with self.assertRaises(ValueError):
            FaultProxy(target=("127.0.0.1", 80), listen_host="0.0.0.0")
        FaultProxy(target=("127.0.0.2", 80))  # all of 127.0.0.0/8 is fine
        FaultProxy(target=("localhost", 80))

    def test_script_obeys_stdin_commands(self):
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "fault_proxy.py"), "--target",
                              f"127.0.0.1:{self.echo.port}"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        try:
            port = int(p.stdout.readline().split(":")[-1])

            def command(line):
                p.stdin.write(line + "\n")
                p.stdin.flush()
                return p.stdout.readline().strip()

            s = connect(port)
            self.socks.append(s)
            self.assertEqual(round_trip(s, b"via script"), b"via script")
            self.assertEqual(command("cut"), "ok")
            self.assertTrue(is_dropped(s))
            self.assertEqual(command("restore"), "ok")
            self.assertEqual(command("delay 100"), "ok")
            s = connect(port)
            self.socks.append(s)
            start = time.monotonic()
            self.assertEqual(round_trip(s, b"slow"), b"slow")
            self.assertGreaterEqual(time.monotonic() - start, 0.18)
            self.assertIn('"cuts": 1', command("stats"))
            p.stdout.readline()  # its "ok"
            self.assertTrue(command("bogus").startswith("error:"))
            self.assertEqual(command("quit"), "ok")
            self.assertEqual(p.wait(5), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(5)
            p.stdin.close()
            p.stdout.close()

    def test_script_refuses_a_remote_target(self):
        r = subprocess.run([sys.executable, os.path.join(HERE, "fault_proxy.py"), "--target",
                            "10.1.2.3:80"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("loopback", r.stderr)


if __name__ == "__main__":
    unittest.main()
