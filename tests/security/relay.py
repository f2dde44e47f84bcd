"""A loopback TCP relay in front of a real service that can turn into a black hole: while open it forwards bytes
both ways; once black-holed it still accepts connections and reads requests, but never answers (on new and
existing connections alike) — what a hung or partitioned dependency looks like to its clients."""

from __future__ import annotations

import contextlib
import socket
import threading


class Relay:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._black = threading.Event()
        self._changed = threading.Condition()
        self._stuck: set[int] = set()  # connections that sent a request into the black hole
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    def black_hole(self) -> None:
        self._black.set()

    @property
    def stuck(self) -> int:
        with self._changed:
            return len(self._stuck)

    def wait_stuck(self, count: int, timeout: float) -> bool:
        """Block until ``count`` connections each have a request nobody will answer."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._stuck) >= count, timeout)

    def close(self) -> None:
        """Close the listener and every connection: stuck clients see the connection end at once."""
        self.listener.close()
        with self._changed:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self._keep(client)
            threading.Thread(target=self._from_client, args=(client,), daemon=True).start()

    def _keep(self, sock: socket.socket) -> None:
        with self._changed:
            self._sockets.append(sock)

    def _from_client(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self._black.is_set():
                    with self._changed:
                        self._stuck.add(id(client))
                        self._changed.notify_all()
                    continue  # swallowed: no answer, ever
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                    self._keep(upstream)
                    threading.Thread(target=self._to_client, args=(upstream, client), daemon=True).start()
                upstream.sendall(data)

    def _to_client(self, upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if not self._black.is_set():
                    client.sendall(data)
