#!/usr/bin/env python3
"""Abuse under measurement: what a login flood and a message flood do to everyone else.

Starts our server (release build, pinned to core 0), puts ten ordinary users in a room, and
measures their latency while an attacker (pinned to core 1, in its own process) floods:

1. baseline: nothing but the ten users, each sending 3 messages a second (under the default
   5/s send limit) and one of them polling GET /api/me;
2. login flood from one address: 500 connections sending wrong-password logins back to back
   (the per-address limit refuses most of them);
3. login flood from 250 addresses (127.0.1.x): a botnet's worth, each address with its own
   allowance, so that the password hasher runs flat out: the worst case for CPU;
4. message flood: one account with 8 sockets sending as fast as the sockets take it (the
   default per-user send limit refuses most of it);
5. memory: 500 concurrent wrong logins from 500 addresses in one burst (every one reaches the
   hasher queue); the server's peak RSS during the burst and its RSS two seconds after, against
   its RSS at rest.

The server runs with its default limits.

Latency is from a victim's `send` to the `message` frame reaching another victim (p50/p99 over
every delivery), and the round trip of GET /api/me. Nothing here asserts a figure; it prints a
table (and writes it to --report if given, between the flood markers). Run by `make bench`;
`make test` runs it with `--quick` so that it cannot rot.
"""

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import websockets

PASSWORD = "correct horse battery"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def post(port, path, body, token=None, source="127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, json.dumps(body), headers)
    res = conn.getresponse()
    data = res.read()
    conn.close()
    return res.status, (json.loads(data) if data else None)


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


# ---- the attacker, in its own process ------------------------------------------------------

async def login_flood(port, conns, seconds, sources):
    request = (
        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: {n}\r\n\r\n{body}"
    )
    def attempt(k, i):
        # A new name each time: the per-username limit never applies, only the per-address one.
        body = json.dumps({"username": f"nobody{k}x{i}", "password": "wrong password!"})
        return request.format(n=len(body), body=body).encode()
    deadline = time.monotonic() + seconds
    counts = {}

    async def one(k):
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(sources[k % len(sources)], 0))
                i = 0
                while time.monotonic() < deadline:
                    i += 1
                    writer.write(attempt(k, i))
                    await writer.drain()
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = head.split(b" ", 2)[1].decode()
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    await reader.readexactly(length)
                    counts[status] = counts.get(status, 0) + 1
                    if b"connection: close" in head.lower():
                        break
                writer.close()
            except (OSError, asyncio.IncompleteReadError):
                counts["error"] = counts.get("error", 0) + 1
                await asyncio.sleep(0.05)

    await asyncio.gather(*(one(k) for k in range(conns)))
    return counts


async def message_flood(port, token, seconds):
    deadline = time.monotonic() + seconds
    sent = 0
    refused = 0

    async def one(k):
        nonlocal sent, refused
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws",
            additional_headers={"Authorization": f"Bearer {token}"},
            max_size=None,
        )
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "join", "room": 1}))

        async def drain():
            nonlocal refused
            async for frame in ws:
                if '"rate_limited"' in frame:
                    refused += 1

        async def spam():
            nonlocal sent
            i = 0
            while True:
                i += 1
                await ws.send(json.dumps({
                    "type": "send", "room": 1,
                    "client_id": f"flood-{k}-{i}", "text": "spam " * 20,
                }))
                sent += 1

        # The server stops reading a socket that ignores its rate limit, so the sends block:
        # stop at the deadline wherever they are, and drop the connection without a close.
        tasks = [asyncio.create_task(drain()), asyncio.create_task(spam())]
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        for t in tasks:
            t.cancel()
        ws.transport.abort()

    await asyncio.gather(*(one(k) for k in range(8)), return_exceptions=True)
    return {"sent": sent, "rate_limited": refused}


def attacker(kind, port, arg, seconds, out):
    os.sched_setaffinity(0, {1})
    if kind == "logins":
        conns, sources = arg
        out.put(asyncio.run(login_flood(port, conns, seconds, sources)))
    else:
        out.put(asyncio.run(message_flood(port, arg, seconds)))


def attack(kind, port, arg, seconds):
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=attacker, args=(kind, port, arg, seconds, q))
    p.start()
    return p, q


# ---- the victims ---------------------------------------------------------------------------

async def victims(port, tokens, seconds, rate):
    """Every victim sends `rate` messages a second; returns send->deliver latencies (ms) seen
    by the first victim, and GET /api/me round trips (ms) polled by it."""
    sent_at = {}
    latencies = []
    me_times = []
    deadline = time.monotonic() + seconds
    conns = []
    for t in tokens:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws",
            additional_headers={"Authorization": f"Bearer {t}"}, max_size=None)
        await ws.recv()
        await ws.send(json.dumps({"type": "join", "room": 1}))
        conns.append(ws)

    async def listen(ws, measure):
        async for frame in ws:
            if measure and '"type":"message"' in frame:
                msg = json.loads(frame)
                cid = msg.get("client_id", "")
                if cid in sent_at:
                    latencies.append((time.monotonic() - sent_at[cid]) * 1000)

    async def speak(k, ws):
        i = 0
        await asyncio.sleep(k / (len(conns) * rate))
        while time.monotonic() < deadline:
            i += 1
            cid = f"v{k}-{i}-{time.monotonic_ns()}"
            sent_at[cid] = time.monotonic()
            await ws.send(json.dumps({"type": "send", "room": 1,
                                      "client_id": cid, "text": f"hello {i}"}))
            await asyncio.sleep(1 / rate)

    def me_loop():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            conn.request("GET", "/api/me", headers={"Authorization": f"Bearer {tokens[0]}"})
            conn.getresponse().read()
            me_times.append((time.monotonic() - t0) * 1000)
            time.sleep(0.1)
        conn.close()

    # Every socket is read (an unread one would stall its close), the first one measured.
    listeners = [asyncio.create_task(listen(ws, k == 0)) for k, ws in enumerate(conns)]
    me = asyncio.get_running_loop().run_in_executor(None, me_loop)
    await asyncio.gather(*(speak(k, ws) for k, ws in enumerate(conns[1:], 1)))
    await asyncio.sleep(1)
    await me
    for listener in listeners:
        listener.cancel()
    for ws in conns:
        await ws.close()
    return latencies, me_times


def row(name, lat, me, extra=""):
    return (f"| {name} | {len(lat)} | {percentile(lat, 0.5):.2f} | {percentile(lat, 0.99):.2f} "
            f"| {percentile(me, 0.5):.2f} | {percentile(me, 0.99):.2f} | {extra} |")


def write_report(path, text):
    """Replaces what lies between the flood markers of `path` (appends them if absent)."""
    start, end = "<!-- flood:start -->", "<!-- flood:end -->"
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    a, b = old.find(start), old.find(end)
    if 0 <= a < b:
        new = old[:a] + start + "\n" + text + old[b:]
    else:
        new = old + "\n" + start + "\n" + text + end + "\n"
    with open(path, "w") as f:
        f.write(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="target/release/backend")
    ap.add_argument("--quick", action="store_true", help="tiny counts: checks the script only")
    ap.add_argument("--report", help="write the results into this Markdown file")
    args = ap.parse_args()
    seconds = 2 if args.quick else 10
    burst = 20 if args.quick else 500
    flood_conns = 20 if args.quick else 500

    tmp = tempfile.mkdtemp(prefix="chat-flood-")
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", "0", args.backend, "--bind", f"127.0.0.1:{port}",
         "--database", os.path.join(tmp, "chat.db"), "--static-dir", os.path.join(tmp, "none")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, RUST_LOG="error"))
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        tokens = []
        for i in range(10):
            status, body = post(port, "/api/register", {"username": f"victim{i}", "password": PASSWORD},
                                source=f"127.0.3.{i + 1}")
            assert status == 201, (status, body)
            tokens.append(body["token"])
        status, body = post(port, "/api/register", {"username": "flooder", "password": PASSWORD},
                            source="127.0.4.1")
        flooder = body["token"]
        idle = rss_kib(server.pid)

        lines = ["| phase | deliveries measured | send->deliver p50 ms | p99 ms "
                 "| GET /api/me p50 ms | p99 ms | attacker |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        lat, me = asyncio.run(victims(port, tokens, seconds, 3))
        lines.append(row("baseline", lat, me))
        base99 = percentile(lat, 0.99)

        one_addr = ["127.0.0.1"]
        botnet = [f"127.0.1.{i}" for i in range(1, 251)]
        login99 = {}
        for name, sources in [("login flood, one address", one_addr),
                              ("login flood, 250 addresses", botnet)]:
            p, q = attack("logins", port, (flood_conns, sources), seconds + 1)
            time.sleep(0.5)
            lat, me = asyncio.run(victims(port, tokens, seconds, 3))
            counts = q.get()
            p.join()
            login99[name] = percentile(lat, 0.99)
            lines.append(row(name, lat, me, " ".join(f"{k}: {v}" for k, v in sorted(counts.items()))))
            time.sleep(2)

        p, q = attack("messages", port, flooder, seconds + 1)
        time.sleep(0.5)
        lat, me = asyncio.run(victims(port, tokens, seconds, 3))
        counts = q.get()
        p.join()
        msg99 = percentile(lat, 0.99)
        lines.append(row("message flood", lat, me, f"sent {counts['sent']}, refused {counts['rate_limited']}"))

        # Memory: one burst of concurrent wrong logins.
        time.sleep(1)
        before = rss_kib(server.pid)
        many = [f"127.0.{2 + i // 250}.{1 + i % 250}" for i in range(burst)]
        p, q = attack("logins", port, (burst, many), 3)
        peak = before
        while p.is_alive():
            peak = max(peak, rss_kib(server.pid))
            time.sleep(0.02)
        counts = q.get()
        p.join()
        time.sleep(2)
        after = rss_kib(server.pid)
        hwm = rss_kib(server.pid, "VmHWM")
        mem = (f"{burst} concurrent wrong logins (as many as they could make in 3 s: "
               f"{' '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}): server RSS at rest "
               f"{idle / 1024:.1f} MiB, before the burst {before / 1024:.1f} MiB, peak during "
               f"{peak / 1024:.1f} MiB (lifetime high-water mark {hwm / 1024:.1f} MiB), two "
               f"seconds after {after / 1024:.1f} MiB ({(after - idle) / 1024:+.1f} MiB above rest).")
        parts = [f"{v:.2f} ms during the {k} ({(v / base99 - 1) * 100:+.0f}%)"
                 for k, v in login99.items()]
        summary = (f"Victims' p99 send->deliver: {base99:.2f} ms at baseline, " + ", ".join(parts)
                   + f", {msg99:.2f} ms during the message flood ({(msg99 / base99 - 1) * 100:+.0f}%).")
        text = "\n".join(lines) + "\n\n" + summary + "\n\n" + mem + "\n"
        print(text)
        if args.report:
            write_report(args.report, text)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
