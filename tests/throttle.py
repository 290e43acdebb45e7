"""A loopback TCP relay that slows the simulator's answers down: downloads that are still running.

Interrupting or terminating a download needs one that lasts: the simulator serves a large
synthetic video, and this relay passes it on at a few MB/s.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit

from runway_widgets import Client
from runway_widgets.simulator import Simulator, Timeline

__all__ = ["Throttle", "slow_task"]


class Throttle:
    """A loopback TCP relay to ``port`` that passes the answer at ``rate`` bytes/s."""

    def __init__(self, port: int, rate: float = 4_000_000) -> None:
        self.port, self.rate = port, rate
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, name="test-throttle", daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                down, _ = self.sock.accept()
            except OSError:
                continue
            up = socket.create_connection(("127.0.0.1", self.port))
            self._sockets += [down, up]
            for source, sink, slow in ((down, up, False), (up, down, True)):
                thread = threading.Thread(target=self._pump, args=(source, sink, slow), name="test-throttle-pump",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while not self._stop.is_set():
                data = source.recv(16384)
                if not data:
                    break
                sink.sendall(data)
                if slow:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)


def slow_task(sim: Simulator, throttle: Throttle, key: str, size: int = 200_000_000) -> str:
    """A finished task whose validly signed ``size``-byte video comes through ``throttle``."""
    instant = {"invisible_for": 0, "submitted_for": 0, "queued_for": 0, "run_for": 0}
    source = sim.add_task(key, Timeline(**instant, media_size=size))
    with Client(key, sim.base_url) as client:
        url = client.fetch(source).result_url
    assert url is not None
    slowed = url.replace(urlsplit(url).netloc, throttle.address)
    return sim.add_task(key, Timeline(**instant, result_url_override=slowed))
