#!/usr/bin/env python3
"""Slowloris against a local HTTP server: N connections each send a request head one byte a
second and never finish it, while a fresh client sends one whole request a second. Reports
when the slow connections were closed and whether the fresh requests were answered.
Loopback only; bounded: stops after --max-seconds.

    scripts/slowloris.py PORT [--connections 200] [--max-seconds 60]
"""
import argparse, selectors, socket, time

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("--connections", type=int, default=200)
parser.add_argument("--max-seconds", type=float, default=60)
args = parser.parse_args()

start = time.monotonic()
head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10000
slow = {}
sel = selectors.DefaultSelector()
for i in range(args.connections):
    s = socket.create_connection(("127.0.0.1", args.port))
    s.setblocking(False)
    slow[s] = {"sent": 0, "closed": None}
    sel.register(s, selectors.EVENT_READ)

fresh_ok = fresh_failed = 0
fresh_latency = []
next_tick = start
while time.monotonic() - start < args.max_seconds:
    now = time.monotonic()
    if now >= next_tick:
        next_tick += 1.0
        for s, st in slow.items():  # one byte each, once a second
            if st["closed"] is None:
                try:
                    s.send(head[st["sent"]:st["sent"] + 1])
                    st["sent"] += 1
                except OSError:
                    st["closed"] = now - start
        t0 = time.monotonic()
        try:  # a fresh client: one whole request
            c = socket.create_connection(("127.0.0.1", args.port), timeout=5)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                reply += chunk
            c.close()
            if reply.startswith(b"HTTP/1.1 200 OK"):
                fresh_ok += 1
                fresh_latency.append(time.monotonic() - t0)
            else:
                fresh_failed += 1
        except OSError:
            fresh_failed += 1
    for key, _ in sel.select(timeout=max(0.0, next_tick - time.monotonic())):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            slow[s]["closed"] = time.monotonic() - start
            sel.unregister(s)
            s.close()
    if all(st["closed"] is not None for st in slow.values()):
        break

closed = sorted(st["closed"] for st in slow.values() if st["closed"] is not None)
print(f"slow connections: {len(slow)}, closed by the server: {len(closed)}")
if closed:
    print(f"  closed after {closed[0]:.1f} s (first) .. {closed[-1]:.1f} s (last); bytes sent each before the close: "
          f"{min(st['sent'] for st in slow.values())}..{max(st['sent'] for st in slow.values())}")
lat = sorted(fresh_latency)
print(f"fresh requests meanwhile: {fresh_ok} answered, {fresh_failed} failed"
      + (f"; latency median {lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms" if lat else ""))
