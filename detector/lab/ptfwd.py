"""A minimal pluggable-transport client driver: plain TCP in, obfs4proxy's SOCKS5 out.

obfs4proxy only speaks the PT protocol: the bridge's arguments (cert, iat-mode) travel as SOCKS5 user name
and password. This forwards every connection on a local port through it to one bridge.
Usage: python -m detector.lab.ptfwd LISTEN_PORT SOCKS_PORT "cert=...;iat-mode=0" BRIDGE_IP BRIDGE_PORT
"""

from __future__ import annotations

import socket
import struct
import sys
import threading


def pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client: socket.socket, socks_port: int, args: bytes, bridge: tuple[str, int]) -> None:
    up = socket.create_connection(("127.0.0.1", socks_port))
    user, password = args[:255], args[255:] or b"\0"
    up.sendall(b"\x05\x01\x02")
    if up.recv(2) != b"\x05\x02":
        client.close(); up.close(); return
    up.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
    if up.recv(2)[1:] != b"\x00":
        client.close(); up.close(); return
    up.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(bridge[0]) + struct.pack("!H", bridge[1]))
    reply = up.recv(10)
    if len(reply) < 2 or reply[1] != 0:
        client.close(); up.close(); return
    threading.Thread(target=pipe, args=(client, up), daemon=True).start()
    pipe(up, client)


def main() -> None:
    listen_port, socks_port, args, bridge_ip, bridge_port = sys.argv[1:6]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(listen_port)))
    srv.listen(16)
    print("forwarding", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, int(socks_port), args.encode(), (bridge_ip, int(bridge_port))),
                         daemon=True).start()


if __name__ == "__main__":
    main()
