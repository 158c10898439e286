"""TCP forwarder: listen on 127.0.0.1:PORT *inside* a test bed host, connect to 127.0.0.1:TARGET on the machine.

Why: the registry listens on the machine's loopback only; a host's dockerd pushes/pulls `127.0.0.1:PORT/...`
(an insecure registry by Docker's default rules) and must reach it without opening anything else.
How: a socket belongs to the network namespace of the thread that created it, and setns(CLONE_NEWNET) is
per-thread. A helper thread enters the host's namespace and creates the listening socket; the main thread
stays on the machine and creates the outgoing connections.

usage: forward.py NETNS_PATH PORT TARGET_PORT   (prints "ready" once listening)
"""
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def listen_inside(ns_path: str, port: int) -> socket.socket:
    out: dict = {}

    def enter_and_listen():
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(ns_path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                out["err"] = OSError(ctypes.get_errno(), "setns")
                return
        finally:
            os.close(fd)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(128)
        out["sock"] = s

    t = threading.Thread(target=enter_and_listen)
    t.start()
    t.join()
    if "err" in out:
        raise out["err"]
    return out["sock"]


def pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def serve(conn: socket.socket, target_port: int) -> None:
    try:
        up = socket.create_connection(("127.0.0.1", target_port), timeout=10)
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    a = threading.Thread(target=pump, args=(conn, up), daemon=True)
    b = threading.Thread(target=pump, args=(up, conn), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    conn.close()
    up.close()


def main() -> None:
    ns_path, port, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lsock = listen_inside(ns_path, port)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve, args=(conn, target), daemon=True).start()


if __name__ == "__main__":
    main()
