"""A TCP relay from a namespace's loopback to a port on the bed's own loopback.

The bed's apiserver listens on 127.0.0.1 only; a node's kube-proxy lives in the node's
namespace. The relay's listening socket is made inside that namespace, its upstream
connections in the bed's, so the node reaches ``127.0.0.1:<port>`` as if the apiserver were
local (the serving certificate holds 127.0.0.1) and nothing else of the bed is exposed.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from testbed.dataplane.namespaces import Namespace


class LoopbackRelay:
    def __init__(self, netns: Namespace, port: int) -> None:
        self.port = port
        self._listener = netns.socket(socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(16)
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inside, _ = self._listener.accept()
            except OSError:
                return
            try:
                outside = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            with self._lock:
                self._open.update((inside, outside))
            for source, sink in ((inside, outside), (outside, inside)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()
