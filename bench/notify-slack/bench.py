#!/usr/bin/env python3
"""notify-slack benchmark: process start → first Slack request, and total run time, against a
loopback fake Web API; gantry vs slackapi/slack-github-action (node) in one run.

Opt-in, not run by CI. Usage:

    cargo build --release                      # or pass a debug binary with --gantry
    python3 bench/notify-slack/bench.py [--runs 30] [--gantry target/release/gantry]
        [--slackapi /path/to/slack-github-action]   # a checkout with dist/ (npm install; npx @vercel/ncc build src/index.js -o dist)
        [--node /path/to/node24]                    # the action runs on node24 (undici 8 needs node >= 22)

The fake server answers `chat.postMessage` / `chat.update` like Slack (`ok`, `channel`, `ts`) and
records the monotonic time each request arrives; "start→request" is that time minus the moment
just before the process was spawned. Only 127.0.0.1 is contacted.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "xoxb-bench-0000-000000000000"


class State:
    arrived = None
    event = threading.Event()
    counter = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        if State.arrived is None:
            State.arrived = time.perf_counter()
            State.event.set()
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        State.counter += 1
        body = json.dumps({"ok": True, "channel": "C0DEPLOYS", "ts": f"1700000000.{State.counter:06d}",
                           "message": {"ts": f"1700000000.{State.counter:06d}"}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST


def runner_env(tmp: Path) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "GITHUB_ACTIONS": "true"}
    for line in (ROOT / "tests/fixtures/notify-slack/runner.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    event = tmp / "event.json"
    event.write_text((ROOT / "tests/fixtures/notify-slack/push-event.json").read_text())
    env.update({"GITHUB_EVENT_PATH": str(event), "GITHUB_EVENT_NAME": "push", "GITHUB_WORKSPACE": str(tmp)})
    for f in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_STATE", "GITHUB_PATH"):
        env[f] = str(tmp / f.lower())
    return env


def measure(cmd, env, runs):
    starts, totals = [], []
    for _ in range(runs):
        State.arrived = None
        State.event.clear()
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        got = State.event.wait(30)
        _, err = p.communicate(timeout=60)
        t2 = time.perf_counter()
        if not got or p.returncode != 0:
            sys.exit(f"{cmd[0]} failed (rc={p.returncode}): {err.decode(errors='replace')[-2000:]}")
        starts.append((State.arrived - t0) * 1000)
        totals.append((t2 - t0) * 1000)
    return starts, totals


def measure_tls_connect(cmd, env, runs):
    """start → TCP accept on an https endpoint: includes loading the system root store, which
    only happens when an endpoint is https (the real slack.com case). The handshake is refused."""
    import socket
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    port = ls.getsockname()[1]
    env = dict(env, INPUT_API=f"https://127.0.0.1:{port}/api/")
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn, _ = ls.accept()
        out.append((time.perf_counter() - t0) * 1000)
        conn.close()
        p.kill()
        p.wait()
    ls.close()
    return out


def fmt(xs):
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(len(xs) * 0.9))]
    return f"median {statistics.median(xs):7.1f} ms  p90 {p90:7.1f} ms  min {xs[0]:7.1f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--gantry", default=None)
    ap.add_argument("--slackapi", default=os.environ.get("SLACKAPI_DIR"))
    ap.add_argument("--node", default=os.environ.get("NODE", "node"), help="node >= 22 (the action's runtime is node24)")
    a = ap.parse_args()
    gantry = a.gantry or next((str(p) for p in [ROOT / "target/release/gantry", ROOT / "target/debug/gantry"] if p.exists()), None)
    if not gantry:
        sys.exit("build gantry first (cargo build --release)")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{srv.server_address[1]}/api/"
    results = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = runner_env(tmp)
        g_env = dict(env, **{"INPUT_TOKEN": TOKEN, "INPUT_CHANNEL": "C0DEPLOYS", "INPUT_API": api,
                             "INPUT_STATUS": "success", "INPUT_ENVIRONMENT": "production",
                             "INPUT_DIGEST": "sha256:" + "a" * 64})
        measure([gantry, "notify-slack"], g_env, 3)  # warm the page cache
        results["gantry notify-slack"] = measure([gantry, "notify-slack"], g_env, a.runs)
        tls = measure_tls_connect([gantry, "notify-slack"], g_env, a.runs)

        if a.slackapi:
            sa = Path(a.slackapi)
            entry = sa / "dist/index.js"
            if not entry.exists():
                entry = sa / "src/index.js"
            payload = json.dumps({"channel": "C0DEPLOYS", "text": "Deployed acme/api to production"})
            s_env = dict(env, **{"INPUT_METHOD": "chat.postMessage", "INPUT_TOKEN": TOKEN, "INPUT_API": api,
                                 "INPUT_PAYLOAD": payload, "INPUT_RETRIES": "0", "INPUT_ERRORS": "true",
                                 "INPUT_PAYLOAD-TEMPLATED": "false"})
            node = [a.node, str(entry)]
            measure(node, s_env, 3)
            version = subprocess.run([a.node, "--version"], capture_output=True, text=True).stdout.strip()
            results[f"slackapi/slack-github-action ({entry.relative_to(sa)}, node {version})"] = measure(node, s_env, a.runs)
    srv.shutdown()

    print(f"{a.runs} runs each, loopback fake Slack, gantry binary: {gantry}")
    for name, (starts, totals) in results.items():
        print(f"\n{name}\n  start→request: {fmt(starts)}\n  total run:     {fmt(totals)}")
    print(f"\ngantry notify-slack, https endpoint (system roots loaded)\n  start→connect: {fmt(tls)}")
    if len(results) == 2:
        (g_s, g_t), (s_s, s_t) = results.values()
        print(f"\nratio (slackapi / gantry): start→request {statistics.median(s_s) / statistics.median(g_s):.1f}x, "
              f"total {statistics.median(s_t) / statistics.median(g_t):.1f}x")


if __name__ == "__main__":
    main()
