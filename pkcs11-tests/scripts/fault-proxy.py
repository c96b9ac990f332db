#!/usr/bin/env python3
"""A TCP relay between the module and the Cryptera service that injects one network fault into the
first signing request it sees, then relays everything faithfully.

  fault-proxy.py LISTEN_PORT UPSTREAM_PORT MODE
  MODE drop-response: the request reaches the service (which signs), the answer is thrown away and
                      the client's connection closed, as when a network drops mid-request.
  MODE answer-503:    the request never reaches the service; the client gets 503 Service Unavailable.
Prints "ready" when listening; writes one line per injected fault to stderr.
"""
import socket
import sys
import threading

listen_port, upstream_port, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
faulted = threading.Event()
lock = threading.Lock()


def is_sign_request(data: bytes) -> bool:
    head = data.split(b"\r\n", 1)[0]
    return head.startswith(b"POST ") and b"/sign " in head


def claim_fault() -> bool:
    with lock:
        if faulted.is_set():
            return False
        faulted.set()
        return True


def serve(client: socket.socket) -> None:
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    drop_answer = threading.Event()

    def downstream() -> None:
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if drop_answer.is_set():
                    print("fault: dropped the answer to a signing request", file=sys.stderr, flush=True)
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    threading.Thread(target=downstream, daemon=True).start()
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            if is_sign_request(data) and claim_fault():
                if mode == "answer-503":
                    print("fault: answered 503 to a signing request", file=sys.stderr, flush=True)
                    body = b'{"error":{"code":"unavailable","message":"injected fault"}}'
                    client.sendall(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                                   b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
                    break
                drop_answer.set()
            upstream.sendall(data)
    except OSError:
        pass
    finally:
        for s in (client, upstream):
            try:
                s.close()
            except OSError:
                pass


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(64)
print("ready", flush=True)
while True:
    connection, _ = server.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
