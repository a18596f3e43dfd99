"""The kernel's share of a relayed token on this machine: one loopback send, one woken receive.

A relay at 50 tokens/s a stream cannot merge a stream's tokens without adding
latency, so each token costs it at least one `recv` (woken by epoll) from the
upstream and one `send` to its client. This measures those two system calls
alone, with no Python around them but a loop, at the same spacing as the
workloads (many connections, a message every ~100 µs, the peer asleep in
between), so the service's CPU per token can be read against what no code of
ours can remove.

    .venv/bin/python -m bench.floor              # 200 connections, 20,000 messages
    .venv/bin/python -m bench.floor --connections 1000

On the 2-core VM of bench/README.md: ~14 µs of the sender's CPU per send (the
kernel delivers into the peer's socket and wakes it, in the sender's time) and
~13.5 µs of the receiver's per woken `recv` (epoll included): ~27 µs a token.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import time

MESSAGE = b"event: content_block_delta\ndata: " + b"x" * 60 + b"\n\n"


def _cpu_us() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1e6


def _receive(port: int, connections: int, messages: int, report: int) -> None:
    """The child: read every message, each woken by epoll, and report its CPU per message."""
    selector = selectors.EpollSelector()
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    expected = messages * len(MESSAGE)
    received, reads = 0, 0
    start = None
    while received < expected:
        for key, _ in selector.select():
            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if start is None:
                start = _cpu_us()
            received += len(data)
            reads += 1
    cpu = _cpu_us() - (start or 0.0)
    os.write(report, json.dumps({"reads": reads, "cpu_us": cpu}).encode())
    os._exit(0)


def measure(connections: int, messages: int, spacing_us: float) -> dict[str, float]:
    """CPU per message inside `send` (this process) and per woken `recv` (a child)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(connections)
    port = listener.getsockname()[1]
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        listener.close()
        os.close(read_end)
        _receive(port, connections, messages, write_end)
    os.close(write_end)
    peers = [listener.accept()[0] for _ in range(connections)]
    for peer in peers:
        peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    time.sleep(0.2)  # the child is in its loop
    inside = 0.0
    start = time.perf_counter()
    for i in range(messages):
        before = time.thread_time()  # user + system CPU of this thread
        peers[i % connections].send(MESSAGE)
        inside += time.thread_time() - before
        deadline = start + (i + 1) * spacing_us / 1e6
        while time.perf_counter() < deadline:  # a busy wait: sleeping would cost calls too
            pass
    receiver = json.loads(os.read(read_end, 4096))
    os.waitpid(child, 0)
    for peer in peers:
        peer.close()
    listener.close()
    send_us = inside * 1e6 / messages
    recv_us = receiver["cpu_us"] / messages
    return {
        "send_cpu_us_per_message": round(send_us, 2),
        "recv_cpu_us_per_message": round(recv_us, 2),
        "reads_per_message": round(receiver["reads"] / messages, 3),
        "floor_us_per_relayed_token": round(send_us + recv_us, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--spacing-us", type=float, default=100.0, help="between two sends")
    args = parser.parse_args()
    result = measure(args.connections, args.messages, args.spacing_us)
    print(json.dumps({"connections": args.connections, "messages": args.messages, **result}))


if __name__ == "__main__":
    main()
