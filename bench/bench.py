#!/usr/bin/env python3
"""The driver behind bench/run: starts Keystead and the peer (node-oidc-provider) on 127.0.0.1,
runs the scenarios of issue 5, prints one table and writes it, with a description of the
machine, to bench/results/ as Markdown plus the raw numbers as JSON.

bench/run installs what is missing and builds the release binary, then runs this file; run it
directly only with a built binary (--keystead-bin) and the peer's node_modules in place.
Nothing here asserts on speed: a scenario that cannot run is reported as not measured, with the
reason, and the exit status is non-zero only when a scenario broke (an exception, or answers
that were not what the scenario expects).
"""
import argparse
import asyncio
import base64
import ctypes
import ctypes.util
import datetime
import hashlib
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

import requests

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
WRK_SCRIPT = os.path.join(BENCH, "wrk", "bench.lua")
PEER_DIR = os.path.join(BENCH, "peers", "oidc-provider")

BOOTSTRAP_ID = "bench-bootstrap"
BOOTSTRAP_SECRET = "bench-bootstrap-secret-" + "0123456789abcdef" * 3
MGMT = "urn:keystead:management"
PEER_CLIENT_ID = "bench-client"
PEER_SECRET = "bench-peer-secret-0123456789abcdef0123456789abcdef"
PASSWORD = "Correct-Horse-9-battery"
CALLBACK = "http://127.0.0.1:9/callback"
THREADS = 2        # Keystead event loops; the peer runs as many node workers
CONNS = 32         # wrk connections for the throughput scenarios
WRK_THREADS = 2

SCENARIOS = ["idle-rss", "discovery", "jwks", "token-rs256", "token-es256", "login",
             "login-hook", "mgmt-client", "mgmt-users", "provision", "sync", "scale"]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """CPU seconds (user + system, all threads) a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def machine_busy_s():
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def self_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class NotMeasured(Exception):
    """A scenario that cannot be measured here, with the reason (not a harness failure)."""


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------

class Process:
    name = "?"

    def __init__(self):
        self.proc = None
        self.port = None
        self.extra_pids = []
        self._listen = threading.Event()
        self._out = []

    def _reader(self, stream, pattern):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._out.append(line)
            del self._out[:-200]
            m = pattern.search(line)
            if m and not self._listen.is_set():
                self.port = int(m.group(1))
                if m.lastindex and m.lastindex >= 2 and m.group(2):
                    self.extra_pids = [int(p) for p in m.group(2).split(",") if p]
                self._listen.set()

    def _wait(self, timeout):
        deadline = time.monotonic() + timeout
        while not self._listen.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start (exit {self.proc.poll()}):\n"
                                   + "\n".join(self._out[-30:]) + "\n" + self.stderr_tail())

    def stderr_tail(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def pids(self):
        return [self.proc.pid] + list(self.extra_pids)

    def rss_mb(self):
        return sum(rss_kb(p) for p in self.pids()) / 1024.0

    def cpu(self):
        return sum(cpu_s(p) for p in self.pids())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class Keystead(Process):
    def __init__(self, binary, workdir, name):
        super().__init__()
        self.binary = binary
        self.name = name
        self.data_dir = os.path.join(workdir, name, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.stderr_path = os.path.join(workdir, name, "stderr.log")
        self._token = None
        self.http = requests.Session()

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYSTEAD_")}
        env.update({
            "KEYSTEAD_DATA_DIR": self.data_dir,
            "KEYSTEAD_MODE": "dev",
            "KEYSTEAD_THREADS": str(THREADS),
            "KEYSTEAD_BOOTSTRAP_CLIENT_ID": BOOTSTRAP_ID,
            "KEYSTEAD_BOOTSTRAP_CLIENT_SECRET": BOOTSTRAP_SECRET,
        })
        return env

    def start(self):
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "--listen", "127.0.0.1:0"],
                                     env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._stderr)
        threading.Thread(target=self._reader, daemon=True, args=(
            self.proc.stdout, re.compile(r"keystead listening on http://127\.0\.0\.1:(\d+)"))).start()
        self._wait(60)
        return self

    def cli(self, *args, timeout=3600):
        r = subprocess.run([self.binary, *args], env=self.env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"keystead {' '.join(args)}: exit {r.returncode}: {r.stderr[-2000:]}")
        return r.stdout

    def url(self, path, tenant=None):
        return self.base + (f"/t/{tenant}" if tenant else "") + path

    def token(self):
        """The bootstrap client's Management API token (platform staff)."""
        if self._token is None:
            r = self.http.post(self.url("/oauth/token"), data={
                "grant_type": "client_credentials", "client_id": BOOTSTRAP_ID,
                "client_secret": BOOTSTRAP_SECRET, "audience": MGMT}, timeout=60)
            check(r, 200, "bootstrap token")
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method, path, tenant=None, token=None, expect=None, timeout=120, **kw):
        headers = {"Authorization": "Bearer " + (token or self.token())}
        r = self.http.request(method, self.url("/api/v2" + path, tenant), headers=headers,
                              timeout=timeout, **kw)
        if expect is not None:
            check(r, expect, f"{method} {tenant or ''}/api/v2{path}")
        return r

    def child_ids(self):
        """Every child tenant's id (paging GET /api/v2/tenants, 100 at a time)."""
        ids, page = [], 0
        while True:
            batch = self.api("GET", f"/tenants?per_page=100&page={page}", expect=200).json()
            if isinstance(batch, dict):
                batch = batch.get("tenants", [])
            ids += [t["id"] for t in batch if not t.get("is_control_plane")]
            if len(batch) < 100:
                return ids
            page += 1

    def tenant_count(self):
        r = self.api("GET", "/tenants?include_totals=true&per_page=1", expect=200)
        return r.json()["total"]


class Peer(Process):
    name = "peer"

    def __init__(self, workdir):
        super().__init__()
        self.stderr_path = os.path.join(workdir, "peer-stderr.log")

    def start(self):
        self._stderr = open(self.stderr_path, "ab")
        env = dict(os.environ, PEER_WORKERS=str(THREADS), NODE_ENV="production")
        self.proc = subprocess.Popen(["node", "server.js", "0"], cwd=PEER_DIR, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr)
        threading.Thread(target=self._reader, daemon=True, args=(
            self.proc.stdout,
            re.compile(r"peer listening on http://127\.0\.0\.1:(\d+) \(\d+ workers, pids ([\d,]+)\)"))).start()
        self._wait(120)
        return self


def check(r, status, what):
    if r.status_code != status:
        raise RuntimeError(f"{what}: expected {status}, got {r.status_code}: {r.text[:500]}")


# --------------------------------------------------------------------------------------------
# A small asyncio HTTP/1.1 client (keep-alive) for exact-count bulk work: provisioning N tenants,
# creating clients in many tenants. wrk runs for a duration, not a number of requests.
# --------------------------------------------------------------------------------------------

class AsyncConn:
    def __init__(self, port):
        self.port = port
        self.r = self.w = None

    async def request(self, method, path, body=None, headers=None):
        if self.w is None:
            self.r, self.w = await asyncio.open_connection("127.0.0.1", self.port)
        h = {"Host": f"127.0.0.1:{self.port}"}
        if body is not None:
            if isinstance(body, str):
                body = body.encode()
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        self.w.write(head.encode("latin-1") + b"\r\n" + (body or b""))
        line = await self.r.readline()
        if not line:
            self.close()
            raise ConnectionError("connection closed")
        status = int(line.split()[1])
        rh = {}
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            rh[k.strip().lower()] = v.strip()
        if "content-length" in rh:
            data = await self.r.readexactly(int(rh["content-length"]))
        elif rh.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int((await self.r.readline()).strip().split(b";")[0], 16)
                if size == 0:
                    await self.r.readline()
                    break
                data += await self.r.readexactly(size)
                await self.r.readline()
        else:
            data = await self.r.read()
            self.close()
        if rh.get("connection", "").lower() == "close":
            self.close()
        return status, data

    def close(self):
        if self.w is not None:
            self.w.close()
        self.r = self.w = None


def bulk(port, items, job, conns=8):
    """Runs `await job(conn, item)` for every item over `conns` keep-alive connections; returns
    (results in item order, seconds). A job returns anything; exceptions are returned too."""
    results = [None] * len(items)

    async def main():
        it = iter(range(len(items)))

        async def worker():
            conn = AsyncConn(port)
            for i in it:
                try:
                    results[i] = await job(conn, items[i])
                except Exception as e:  # noqa: BLE001 - reported by the caller
                    results[i] = e
                    conn.close()
            conn.close()

        await asyncio.gather(*(worker() for _ in range(conns)))

    t0 = time.monotonic()
    asyncio.run(main())
    return results, time.monotonic() - t0


# --------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------

def login_tenant(ks, tid, emails):
    """Creates tenant `tid` with a web client (authorization code) and a database user per
    email (password PASSWORD); returns the client."""
    ks.api("POST", "/tenants", json={"id": tid}, expect=201)
    client = ks.api("POST", "/clients", tenant=tid, expect=201, json={
        "name": "web", "app_type": "regular_web", "callbacks": [CALLBACK],
        "grant_types": ["authorization_code"]}).json()
    for e in emails:
        ks.api("POST", "/users", tenant=tid, expect=201, json={
            "email": e, "password": PASSWORD, "connection": "Username-Password-Authentication"})
    return client


def run_wrk(url, duration, conns=CONNS, env=None, timeout_s=30, server=None):
    """One wrk run with bench/wrk/bench.lua; returns its BENCH_JSON numbers plus "rate" and,
    with `server`, the cores the server and wrk used on average ("server_cores", "wrk_cores")."""
    cmd = ["wrk", "-t", str(min(WRK_THREADS, conns)), "-c", str(conns), "-d", f"{duration}s",
           "--timeout", f"{timeout_s}s", "-s", WRK_SCRIPT, url]
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("BENCH_"):
            del e[k]
    e.update(env or {})
    wrk_cpu0 = children_cpu_s()
    srv_cpu0 = server.cpu() if server is not None else 0.0
    p = subprocess.run(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=duration + timeout_s + 60)
    srv_cpu1 = server.cpu() if server is not None else 0.0
    wrk_cpu1 = children_cpu_s()
    m = re.search(r"^BENCH_JSON (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed (exit {p.returncode}): {p.stderr[-1000:]} {p.stdout[-1000:]}")
    res = json.loads(m.group(1))
    secs = res["duration_us"] / 1e6
    res["rate"] = res["requests"] / secs if secs > 0 else 0.0
    if secs > 0:
        res["wrk_cores"] = (wrk_cpu1 - wrk_cpu0) / secs
        if server is not None:
            res["server_cores"] = (srv_cpu1 - srv_cpu0) / secs
    errs = res["errors"]
    res["failed"] = errs["connect"] + errs["read"] + errs["write"] + errs["status"] + errs["timeout"]
    return res


def wrk_ok(res, what):
    """Raises when more than 1% of a run's requests failed (the numbers would be meaningless)."""
    if res["requests"] == 0:
        raise RuntimeError(f"{what}: no request completed")
    if res["failed"] > 0.01 * res["requests"]:
        raise RuntimeError(f"{what}: {res['failed']} of {res['requests']} requests failed "
                           f"({res['errors']})")


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

class Row:
    def __init__(self, scenario, unit, key):
        self.scenario = scenario      # label shown in the table
        self.key = key                # scenario id (for --only and the JSON)
        self.unit = unit
        self.k = None                 # dict: value, p50_ms, p99_ms, rss_mb, rounds
        self.p = None
        self.ratio_note = None        # text for the ratio column when it is not keystead/peer
        self.notes = []
        self.tail_notes = []          # shown after the notes (CPU use)
        self.error = None             # "not measured: ..." or an error
        self.broken = False
        self.peer_applicable = True
        self.lower_is_better = False

    def as_json(self):
        return {"scenario": self.scenario, "id": self.key, "unit": self.unit,
                "keystead": self.k, "peer": self.p if self.peer_applicable else None,
                "ratio": self.ratio(), "notes": [n for n in self.notes + self.tail_notes if n],
                "error": self.error}

    def ratio(self):
        if self.k and self.p and self.k.get("value") and self.p.get("value"):
            return self.k["value"] / self.p["value"]
        return None


def fmt_num(v, unit):
    if v is None:
        return "—"
    if unit in ("MB",):
        return f"{v:,.1f} MB"
    if unit == "ms":
        return f"{v:,.1f} ms" if v < 100 else f"{v:,.0f} ms"
    if v >= 100:
        return f"{v:,.0f} {unit}"
    return f"{v:,.1f} {unit}"


def fmt_ms(v):
    if v is None:
        return "—"
    if v < 1:
        return f"{v:.2f}"
    if v < 100:
        return f"{v:.1f}"
    return f"{v:,.0f}"


def table(rows):
    out = ["| scenario | keystead | peer | ratio | p50 (ms) | p99 (ms) | RSS (MB) |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if r.error:
            out.append(f"| {r.scenario} | {r.error} | | | | | |")
            continue
        k, p = r.k or {}, (r.p or {}) if r.peer_applicable else {}
        peer = fmt_num(p.get("value"), r.unit) if r.peer_applicable else "—"
        ratio = r.ratio()
        ratio_s = r.ratio_note or (f"{ratio:.2f}x" if ratio is not None else "—")

        def pair(field, f):
            a, b = k.get(field), p.get(field)
            if not r.peer_applicable or b is None:
                return f(a)
            return f"{f(a)} / {f(b)}"

        rss = pair("rss_mb", lambda v: "—" if v is None else f"{v:,.1f}")
        out.append(f"| {r.scenario} | {fmt_num(k.get('value'), r.unit)} | {peer} | {ratio_s} | "
                   f"{pair('p50_ms', fmt_ms)} | {pair('p99_ms', fmt_ms)} | {rss} |")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.smoke = args.smoke
        self.duration = args.duration or (1 if self.smoke else 10)
        self.rounds = args.rounds or (2 if self.smoke else 3)
        self.warmup = 0 if self.smoke else 1
        if self.smoke:
            self.users = 200
            self.sync_tiers = [20, 50]
            self.scale_tenants = 100
            self.spread = 20
            self.login_seq = 3
        else:
            self.users = 10000
            self.sync_tiers = [1000, 10000]
            self.scale_tenants = 100000
            self.spread = args.spread or 1000
            self.login_seq = 10
        if args.scale_tenants:
            self.scale_tenants = args.scale_tenants
        if args.users:
            self.users = args.users
        if args.spread:
            self.spread = args.spread
        self.only = set(args.only) if args.only else set(SCENARIOS)
        self.rows = []
        self.workdir = tempfile.mkdtemp(prefix="keystead-bench-")
        self.ks = None
        self.peer = None
        self.scale = None
        self.scale_ids = []          # child tenants on the scale server whose ids are known
        self.broken = False
        self.started = time.time()

    # --- helpers ----------------------------------------------------------------------------

    def row(self, scenario, unit, key, peer=True):
        r = Row(scenario, unit, key)
        r.peer_applicable = peer
        self.rows.append(r)
        return r

    def fail(self, row, exc):
        if isinstance(exc, NotMeasured):
            row.error = f"not measured: {exc}"
        else:
            row.error = f"error: {str(exc).splitlines()[0][:200]}"
            row.broken = True
            self.broken = True
            log(f"{row.scenario}: {row.error}\n{traceback.format_exc()}")

    def measure(self, server, url, env=None, conns=CONNS, duration=None, label=""):
        """One wrk run against a server: returns the result dict with the server's RSS."""
        res = run_wrk(url, duration or self.duration, conns=conns, env=env, server=server)
        wrk_ok(res, f"{label} on {server.name}")
        res["rss_mb"] = server.rss_mb()
        return res

    def versus(self, row, targets, conns=CONNS):
        """A B A B: targets = [(server, url, env)]; runs `rounds` rounds alternating the servers
        and keeps each server's best round (highest rate). Fills row.k / row.p."""
        runs = {t[0].name: [] for t in targets}
        if self.warmup:
            for server, url, env in targets:
                run_wrk(url, self.warmup, conns=conns, env=env)
        for _ in range(self.rounds):
            for server, url, env in targets:
                runs[server.name].append(self.measure(server, url, env, conns, label=row.scenario))
        for i, (server, _, _) in enumerate(targets):
            best = max(runs[server.name], key=lambda r: r["rate"])
            entry = entry_of(best, runs[server.name])
            if i == 0:
                row.k = entry
            else:
                row.p = entry
        self.profile(row, *targets[0], conns=conns)
        if row.k.get("server_cores") and row.p.get("server_cores"):
            kc, pc = row.k["server_cores"], row.p["server_cores"]
            k_eff, p_eff = row.k["value"] / kc, row.p["value"] / pc
            row.k["per_cpu_ratio"] = k_eff / p_eff
            row.tail_notes.append(
                f"CPU in the best runs: Keystead {kc:.2f} cores ({k_eff:,.0f} per CPU-second), "
                f"peer {pc:.2f} cores ({p_eff:,.0f} per CPU-second), so per CPU-second of the "
                f"server {k_eff / p_eff:.2f}x; wrk itself used {row.k['wrk_cores']:.2f} / "
                f"{row.p['wrk_cores']:.2f} cores of the 2.")
        return runs

    def profile(self, row, server, url, env=None, conns=CONNS):
        """With --profile: one more run of the same load while `perf record` samples Keystead
        (cpu-clock, 499 Hz, every thread); the flat profile (self time by symbol) goes to
        RESULTS-profiles/SCENARIO.txt. Never affects the measured numbers."""
        if not self.args.profile or not isinstance(server, Keystead):
            return
        if not shutil.which("perf"):
            row.tail_notes.append("Not profiled: perf is not installed.")
            return
        slug = re.sub(r"[^a-z0-9]+", "-", row.scenario.lower()).strip("-")[:70]
        os.makedirs(self.profile_dir, exist_ok=True)
        data = os.path.join(self.workdir, slug + ".perf.data")
        perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499", "-p",
                                 str(server.proc.pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            res = run_wrk(url, self.duration, conns=conns, env=env, server=server)
        finally:
            perf.send_signal(signal.SIGINT)
            try:
                perf.wait(60)
            except subprocess.TimeoutExpired:
                perf.kill()
        rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                              "--sort", "dso,symbol", "--percent-limit", "0.4"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             timeout=300).stdout
        lines = [shorten_symbol(l) for l in rep.splitlines()
                 if l.strip() and not l.startswith("#")][:60]
        path = os.path.join(self.profile_dir, slug + ".txt")
        with open(path, "w") as f:
            f.write(f"# {row.scenario}: perf record -e cpu-clock -F 499 -p <keystead> during one "
                    f"more {self.duration} s run ({res['rate']:,.0f}/s while sampled); self "
                    f"time by shared object and symbol, entries >= 0.4%\n")
            f.write("\n".join(lines) + "\n")
        row.tail_notes.append(f"Profile: `{os.path.relpath(path, BENCH)}`.")

    # --- servers ----------------------------------------------------------------------------

    def start_main(self):
        if self.ks is None:
            log("starting keystead (main)")
            self.ks = Keystead(self.args.keystead_bin, self.workdir, "keystead").start()
        return self.ks

    def start_peer(self):
        if self.peer is None:
            log("starting the peer (oidc-provider, node cluster)")
            self.peer = Peer(self.workdir).start()
        return self.peer

    # --- 8. idle RSS ------------------------------------------------------------------------

    def idle_rss(self):
        row = self.row("idle RSS (after start)", "MB", "idle-rss")
        row.lower_is_better = True
        try:
            ks, peer = self.start_main(), self.start_peer()
            time.sleep(1.0)
            k, p = ks.rss_mb(), peer.rss_mb()
            row.k = {"value": k, "rss_mb": k}
            row.p = {"value": p, "rss_mb": p, "processes": len(peer.pids())}
            row.notes.append(f"VmRSS right after start (1 s settle). Keystead: one process, "
                             f"{THREADS} event loops, fresh data dir with only the control plane. "
                             f"Peer: sum over the node cluster's {len(peer.pids())} processes "
                             f"(primary + {THREADS} workers).")
        except Exception as e:  # noqa: BLE001
            self.fail(row, e)

    # --- 1. discovery and JWKS --------------------------------------------------------------

    def setup_child(self, tid, alg):
        """A child tenant with its own API and a client_credentials client granted to it; returns
        the form body of a token request."""
        ks = self.ks
        r = ks.api("POST", "/tenants", json={"id": tid, "signing_alg": alg})
        if r.status_code != 409:
            check(r, 201, f"create tenant {tid}")
        ks.api("POST", "/resource-servers", tenant=tid, expect=201, json={
            "name": "Bench API", "identifier": "urn:bench:api"})
        c = ks.api("POST", "/clients", tenant=tid, expect=201, json={
            "name": "bench-m2m", "app_type": "non_interactive",
            "grant_types": ["client_credentials"]}).json()
        ks.api("POST", "/client-grants", tenant=tid, expect=201, json={
            "client_id": c["client_id"], "audience": "urn:bench:api", "scope": []})
        body = urllib.parse.urlencode({"grant_type": "client_credentials",
                                       "client_id": c["client_id"],
                                       "client_secret": c["client_secret"],
                                       "audience": "urn:bench:api"})
        r = requests.post(ks.url("/oauth/token", tid), data=body, timeout=30,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        check(r, 200, f"token from {tid}")
        alg_seen = jwt_header(r.json()["access_token"])["alg"]
        if alg_seen != alg:
            raise RuntimeError(f"{tid}: token signed {alg_seen}, expected {alg}")
        return body

    def ensure_children(self):
        if getattr(self, "_children", None) is None:
            self._children = {"RS256": self.setup_child("bench-rs", "RS256"),
                              "ES256": self.setup_child("bench-es", "ES256")}
        return self._children

    def peer_token_body(self, alg):
        return urllib.parse.urlencode({"grant_type": "client_credentials",
                                       "client_id": PEER_CLIENT_ID, "client_secret": PEER_SECRET,
                                       "resource": f"urn:bench:{alg.lower()}"})

    def get_scenario(self, key, label, ks_path, peer_path):
        row = self.row(f"{label} (GET, {CONNS} conns)", "req/s", key)
        half = self.row(f"{label} at half the peak rate", "req/s", key)
        try:
            ks, peer = self.start_main(), self.start_peer()
            self.ensure_children()
            for srv, path in ((ks, ks_path), (peer, peer_path)):
                r = requests.get(srv.base + path, timeout=10)
                check(r, 200, f"{label} on {srv.name}")
            targets = [(ks, ks.base + ks_path, {}), (peer, peer.base + peer_path, {})]
            self.versus(row, targets)
            row.notes.append(f"Keystead: {ks_path} (a path-routed child tenant); peer: {peer_path}. "
                             f"wrk {WRK_THREADS} threads, {CONNS} keep-alive connections, "
                             f"{self.duration} s per run, best of {self.rounds} rounds A B A B.")
        except Exception as e:  # noqa: BLE001
            self.fail(row, e)
            half.error = "not measured: the peak run failed"
            return
        try:
            self.half_rate(half, [(ks, ks.base + ks_path, row.k["value"]),
                                  (peer, peer.base + peer_path, row.p["value"])])
        except Exception as e:  # noqa: BLE001
            self.fail(half, e)

    def half_rate(self, row, targets):
        """p99 at about half of each server's own peak: the same 32 connections, each waiting a
        think time after every response (wrk's delay(), fractional ms by random rounding). The
        think time is calibrated with a short run so the achieved rate is ~half the peak."""
        achieved = []
        for i, (srv, url, peak) in enumerate(targets):
            want = peak / 2
            cycle_ms = CONNS * 1000.0 / want              # per-connection request period
            delay = max(cycle_ms - 0.1, 0.0)
            cal = run_wrk(url, max(1, self.duration // 3), env={"BENCH_DELAY_MS": f"{delay:.4f}"})
            wrk_ok(cal, f"half-rate calibration on {srv.name}")
            service_ms = max(CONNS * 1000.0 / cal["rate"] - delay, 0.0)
            delay = max(cycle_ms - service_ms, 0.0)
            res = self.measure(srv, url, env={"BENCH_DELAY_MS": f"{delay:.4f}"},
                               label=row.scenario)
            entry = entry_of(res, [res])
            entry.update({"target_rate": want, "think_ms": delay})
            achieved.append(f"{srv.name} {res['rate']:,.0f}/s of target {want:,.0f}/s "
                            f"(think time {delay:.2f} ms)")
            if i == 0:
                row.k = entry
            else:
                row.p = entry
        row.ratio_note = "—"
        row.notes.append("Each server at half of its own peak (closed loop with think time, "
                         "wrk has no fixed-rate mode): " + "; ".join(achieved) + ". The value "
                         "columns are the achieved rates; p99 is what this row is for.")

    # --- 2. client_credentials --------------------------------------------------------------

    def token_scenario(self, alg):
        key = f"token-{alg.lower()}"
        row = self.row(f"client_credentials token, {alg}", "tokens/s", key)
        try:
            ks, peer = self.start_main(), self.start_peer()
            body = self.ensure_children()[alg]
            tid = "bench-rs" if alg == "RS256" else "bench-es"
            pbody = self.peer_token_body(alg)
            r = requests.post(peer.base + "/token", data=pbody, timeout=10,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
            check(r, 200, "peer token")
            if jwt_header(r.json()["access_token"])["alg"] != alg:
                raise RuntimeError("peer signed with the wrong algorithm")
            env_k = {"BENCH_METHOD": "POST", "BENCH_BODY": body}
            env_p = {"BENCH_METHOD": "POST", "BENCH_BODY": pbody}
            self.versus(row, [(ks, ks.url("/oauth/token", tid), env_k),
                              (peer, peer.base + "/token", env_p)])
            row.notes.append(f"POST /oauth/token (client_secret_post, form body) → JWT access "
                             f"token signed {alg}, {CONNS} connections. Keystead: tenant {tid} "
                             f"(signing_alg {alg}), a client_credentials client granted to its "
                             f"own API urn:bench:api. Peer: resource=urn:bench:{alg.lower()} "
                             f"(resource indicators, accessTokenFormat jwt).")
        except Exception as e:  # noqa: BLE001
            self.fail(row, e)

    # --- 3. password login ------------------------------------------------------------------

    def login_scenario(self):
        levels = [4, 8]
        rows = [self.row(f"authorization-code login, argon2id ({n} concurrent)", "logins/s",
                         "login", peer=False) for n in levels]
        try:
            ks = self.start_main()
            tid = "bench-login"
            emails = [f"login{i}@bench.example" for i in range(8)]
            c = login_tenant(ks, tid, emails)
            # For the probe: a client_credentials token of the same tenant, a request that
            # runs on the worker pool, where the password hashes run too.
            ks.api("POST", "/resource-servers", tenant=tid, expect=201, json={
                "name": "Probe API", "identifier": "urn:bench:probe"})
            m2m = ks.api("POST", "/clients", tenant=tid, expect=201, json={
                "name": "probe", "app_type": "non_interactive",
                "grant_types": ["client_credentials"]}).json()
            ks.api("POST", "/client-grants", tenant=tid, expect=201, json={
                "client_id": m2m["client_id"], "audience": "urn:bench:probe", "scope": []})
            probe_form = {"grant_type": "client_credentials", "client_id": m2m["client_id"],
                          "client_secret": m2m["client_secret"], "audience": "urn:bench:probe"}
            params = argon2_params(ks, tid)
            hash_s = argon2_time(params)
            # Sequential logins: the latency of one login and of its password check.
            seq = [login_once(ks, tid, c, emails[i % len(emails)]) for i in range(self.login_seq)]
            seq_total = statistics.median(s["total"] for s in seq)
            seq_post = statistics.median(s["post"] for s in seq)
        except Exception as e:  # noqa: BLE001
            for row in rows:
                self.fail(row, e)
            return
        cores = os.cpu_count() or 1
        limit = cores / hash_s
        for conc, row in zip(levels, rows):
            try:
                stats = self.run_logins(ks, tid, c, emails, conc, probe_form)
                rate = stats["rate"]
                row.k = dict(stats, argon2=params, hash_ms=hash_s * 1000, limit_per_s=limit,
                             sequential_login_ms=seq_total * 1000,
                             sequential_password_post_ms=seq_post * 1000)
                row.ratio_note = f"{rate / limit:.0%} of limit"
                if conc == levels[0]:
                    row.notes.append(
                        f"Each login: GET /t/{tid}/authorize (PKCE) → GET /u/login → POST "
                        f"/u/login (email + password) → 302 with the code → POST /oauth/token "
                        f"(client secret + verifier), a fresh cookie jar per login, one Python "
                        f"thread per concurrent login; p50/p99 are whole logins (4 requests). "
                        f"argon2id m={params['m']} KiB, t={params['t']}, p={params['p']} (read "
                        f"from a stored hash); one hash takes {hash_s * 1000:.1f} ms here "
                        f"(libargon2 through ctypes, median of 5), so the limit is {cores} "
                        f"cores ÷ {hash_s * 1000:.1f} ms = {limit:.1f} logins/s. One login alone "
                        f"(sequential, median of {len(seq)}): {seq_total * 1000:.1f} ms, of "
                        f"which POST /u/login {seq_post * 1000:.1f} ms.")
                row.notes.append(
                    f"{conc} concurrent for {stats['seconds']:.1f} s: {rate:.1f}/s = "
                    f"{rate / limit:.0%} of the limit. CPU meanwhile: Keystead "
                    f"{stats['server_cores']:.2f} cores ({stats['server_cores'] / rate * 1000:.1f} "
                    f"ms per login, of which the hash is {hash_s * 1000:.1f}), the Python driver "
                    f"and probe {stats['driver_cores']:.2f} cores. A probe alternated every 5 ms "
                    f"between GET /healthz (answered on an event loop): p99 "
                    f"{stats['healthz_p99_ms']:.1f} ms, max {stats['healthz_max_ms']:.1f} ms, and "
                    f"a client_credentials token of the same tenant (worker pool, like the "
                    f"hashes): p50 {stats['token_p50_ms']:.1f} ms, p99 "
                    f"{stats['token_p99_ms']:.1f} ms, max {stats['token_max_ms']:.1f} ms "
                    f"(unloaded: {stats['token_idle_ms']:.1f} ms).")
            except Exception as e:  # noqa: BLE001
                self.fail(row, e)

    def login_hook_scenario(self):
        """The cost of one trivial post-login hook: logins on two tenants that differ only in
        that hook, one at a time, alternating, with the server's CPU per login."""
        row = self.row("login with one trivial post-login hook (sequential)", "logins/s",
                       "login-hook", peer=False)
        hook = ('function onExecutePostLogin(event, api)\n'
                '  api.accessToken.setCustomClaim("https://bench.example/tenant", event.tenant.id)\n'
                'end')
        try:
            ks = self.start_main()
            setup = {}
            for tid in ("bench-nohook", "bench-hook"):
                c = login_tenant(ks, tid, ["hook@bench.example"])
                if tid == "bench-hook":
                    ks.api("POST", "/hooks", tenant=tid, expect=201,
                           json={"trigger_id": "post-login", "code": hook})
                login_once(ks, tid, c, "hook@bench.example")  # warm: keys, caches, Lua state
                setup[tid] = c
            times = {tid: [] for tid in setup}
            cpu = {tid: 0.0 for tid in setup}
            n = self.login_seq * 4
            for i in range(n):
                order = list(setup) if i % 2 == 0 else list(reversed(list(setup)))
                for tid in order:  # A B, B A, ...: drift hits both
                    c0 = ks.cpu()
                    times[tid].append(login_once(ks, tid, setup[tid], "hook@bench.example")["total"])
                    cpu[tid] += ks.cpu() - c0
            with_hook, without = (statistics.median(times["bench-hook"]),
                                  statistics.median(times["bench-nohook"]))
            cpu_with, cpu_without = cpu["bench-hook"] / n, cpu["bench-nohook"] / n
            lat = sorted(times["bench-hook"])
            row.k = {"value": 1 / with_hook, "p50_ms": with_hook * 1000,
                     "p99_ms": pct(lat, 99) * 1000, "rss_mb": ks.rss_mb(),
                     "without_p50_ms": without * 1000, "cpu_ms_with": cpu_with * 1000,
                     "cpu_ms_without": cpu_without * 1000, "logins": 2 * n}
            row.ratio_note = f"{with_hook / without - 1:+.1%} time vs no hook"
            row.notes.append(
                f"{n} logins on each of two tenants alternating (A B, B A, …), identical but for "
                f"one post-login hook that sets one claim from event.tenant.id. Median login: "
                f"{with_hook * 1000:.1f} ms with the hook, {without * 1000:.1f} ms without "
                f"({with_hook / without - 1:+.1%}); Keystead CPU per login {cpu_with * 1000:.1f} "
                f"ms with, {cpu_without * 1000:.1f} ms without ({cpu_with / cpu_without - 1:+.1%}"
                f"). Target: at most +10%.")
        except Exception as e:  # noqa: BLE001
            self.fail(row, e)

    def run_logins(self, ks, tid, client, emails, conc, probe_form):
        """`conc` browsers logging in for the duration, with a probe; returns the numbers."""
        stop = threading.Event()
        healthz, token = [], []
        s0 = requests.Session()
        idle = []
        for _ in range(5):
            t0 = time.perf_counter()
            check(s0.post(ks.url("/oauth/token", tid), data=probe_form, timeout=30), 200,
                  "probe token")
            idle.append(time.perf_counter() - t0)

        def prober():
            s = requests.Session()
            while not stop.is_set():
                t0 = time.perf_counter()
                s.get(ks.url("/healthz"), timeout=30)
                healthz.append(time.perf_counter() - t0)
                time.sleep(0.005)
                t0 = time.perf_counter()
                r = s.post(ks.url("/oauth/token", tid), data=probe_form, timeout=30)
                token.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    failures.append(f"probe token: {r.status_code}")
                time.sleep(0.005)

        results, failures = [], []

        def worker(n):
            i = n
            while not stop.is_set():
                try:
                    results.append(login_once(ks, tid, client, emails[i % len(emails)]))
                except Exception as e:  # noqa: BLE001
                    failures.append(str(e))
                i += conc

        dur = max(self.duration, 2)
        pt = threading.Thread(target=prober, daemon=True)
        ws = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(conc)]
        cpu0, me0 = ks.cpu(), self_cpu_s()
        t0 = time.monotonic()
        pt.start()
        for w in ws:
            w.start()
        time.sleep(dur)
        stop.set()
        for w in ws:
            w.join(60)
        elapsed = time.monotonic() - t0
        pt.join(10)
        cpu1, me1 = ks.cpu(), self_cpu_s()
        if failures:
            raise RuntimeError(f"{len(failures)} logins failed, e.g. {failures[0]}")
        if not results:
            raise RuntimeError("no login completed")
        lat = sorted(r["total"] for r in results)
        hz, tk = sorted(healthz), sorted(token)
        ms = 1000
        return {"value": len(results) / elapsed, "rate": len(results) / elapsed,
                "p50_ms": pct(lat, 50) * ms, "p99_ms": pct(lat, 99) * ms,
                "rss_mb": ks.rss_mb(), "logins": len(results), "seconds": elapsed,
                "concurrency": conc,
                "server_cores": (cpu1 - cpu0) / elapsed, "driver_cores": (me1 - me0) / elapsed,
                "healthz_p99_ms": pct(hz, 99) * ms, "healthz_max_ms": hz[-1] * ms,
                "token_p50_ms": pct(tk, 50) * ms, "token_p99_ms": pct(tk, 99) * ms,
                "token_max_ms": tk[-1] * ms, "token_idle_ms": statistics.median(idle) * ms,
                "probes": len(hz) + len(tk)}

    # --- 4. Management API ------------------------------------------------------------------

    def setup_mgmt_tenant(self):
        if getattr(self, "_mgmt", None) is not None:
            return self._mgmt
        ks = self.start_main()
        tid = "bench-mgmt"
        ks.api("POST", "/tenants", json={"id": tid}, expect=201)
        ks.api("POST", "/users", tenant=tid, expect=201, json={
            "email": "seed@bench.example", "password": PASSWORD,
            "connection": "Username-Password-Authentication"})
        t0 = time.monotonic()
        doc = ks.api("GET", f"/tenants/{tid}/export", expect=200).json()
        ks.api("DELETE", f"/tenants/{tid}", expect=204)
        seed = next(r for r in doc["records"] if r["kind"] == "user")
        others = [r for r in doc["records"] if r["kind"] != "user"]
        users = []
        for i in range(self.users):
            hexid = hashlib.sha256(f"bench-user-{i}".encode()).hexdigest()[:24]
            email = f"user{i:05d}@bench.example"
            d = json.loads(json.dumps(seed["data"]))
            d.update({"email": email, "name": f"Bench User {i}", "nickname": f"user{i:05d}",
                      "user_id": f"auth0|{hexid}"})
            d["identities"][0]["user_id"] = hexid
            users.append({"kind": "user", "id": f"auth0|{hexid}",
                          "key": seed["key"].split("\n")[0] + "\n" + email, "data": d})
        doc["records"] = others + users
        path = os.path.join(self.workdir, "mgmt-import.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        ks.cli("tenant", "import", path)
        setup_s = time.monotonic() - t0
        total = ks.api("GET", "/users?include_totals=true&per_page=1", tenant=tid,
                       expect=200).json()["total"]
        if total != self.users:
            raise RuntimeError(f"{tid} has {total} users after the import, expected {self.users}")
        clients = ks.api("GET", "/clients", tenant=tid, expect=200).json()
        m2m = next(c for c in clients if c["name"] == "Management Client")
        secret = ks.api("POST", f"/clients/{m2m['client_id']}/rotate-secret", tenant=tid,
                        expect=200).json()["client_secret"]
        r = requests.post(ks.url("/oauth/token", tid), timeout=30, data={
            "grant_type": "client_credentials", "client_id": m2m["client_id"],
            "client_secret": secret, "audience": MGMT})
        check(r, 200, "tenant management token")
        self._mgmt = {"tenant": tid, "token": r.json()["access_token"],
                      "client_id": m2m["client_id"], "setup_s": setup_s}
        log(f"{tid}: {total} users imported in {setup_s:.1f} s")
        return self._mgmt

    def mgmt_client(self):
        row = self.row("Management API: GET /clients/{id}", "req/s", "mgmt-client", peer=False)
        staff = self.row("Management API: GET /clients/{id}, platform-staff token (audited)",
                         "req/s", "mgmt-client", peer=False)
        try:
            ks = self.start_main()
            m = self.setup_mgmt_tenant()
            path = f"/t/{m['tenant']}/api/v2/clients/{m['client_id']}"
            r = requests.get(ks.base + path, headers={"Authorization": "Bearer " + m["token"]},
                             timeout=30)
            check(r, 200, "GET client")
            self.single(row, ks, ks.base + path,
                        {"BENCH_HEADERS": "Authorization: Bearer " + m["token"]})
            row.notes.append(f"The tenant's own M2M token (Management Client, all scopes); "
                             f"tenant {m['tenant']} holds {self.users:,} users; {CONNS} "
                             f"connections, best of {self.rounds}.")
        except Exception as e:  # noqa: BLE001
            self.fail(row, e)
        try:
            ks = self.start_main()
            m = self.setup_mgmt_tenant()
            path = f"/t/{m['tenant']}/api/v2/clients/{m['client_id']}"
            self.single(staff, ks, ks.base + path,
                        {"BENCH_HEADERS": "Authorization: Bearer " + ks.token()})
            staff.notes.append("The same request with the bootstrap client's control-plane token "
                               "(rule (c) of multi-tenancy.md): every call is also written to "
                               "the tenant's audit log.")
        except Exception as e:  # noqa: BLE001
            self.fail(staff, e)

    def mgmt_users(self):
        row = self.row("Management API: GET /users?per_page=50 (random page)", "req/s",
                       "mgmt-users", peer=False)
        try:
            ks = self.start_main()
            m = self.setup_mgmt_tenant()
            pages = max(1, self.users // 50)
            reqs = os.path.join(self.workdir, "mgmt-users.txt")
            with open(reqs, "w") as f:
                for page in range(pages):
                    f.write(f"GET\t/t/{m['tenant']}/api/v2/users?per_page=50&page={page}\t\t"
                            f"Authorization: Bearer {m['token']}\n")
            r = requests.get(ks.url(f"/api/v2/users?per_page=50&page={pages - 1}", m["tenant"]),
                             headers={"Authorization": "Bearer " + m["token"]}, timeout=30)
            check(r, 200, "list users")
            if len(r.json()) != 50:
                raise RuntimeError(f"last page has {len(r.json())} users")
            self.single(row, ks, ks.base + "/", {"BENCH_REQUESTS": reqs})
            row.notes.append(f"{self.users:,} users (imported with `keystead tenant import`: "
                             f"a generated export document, every user with the same argon2id "
                             f"hash, {m['setup_s']:.1f} s); each request a random page of "
                             f"0..{pages - 1}, tenant's own token, {CONNS} connections.")
        except Exception as e:  # noqa: BLE001
            self.fail(row, e)

    def single(self, row, server, url, env, conns=CONNS):
        """Keystead-only throughput: best of `rounds` runs."""
        if self.warmup:
            run_wrk(url, self.warmup, conns=conns, env=env)
        runs = [self.measure(server, url, env, conns, label=row.scenario)
                for _ in range(self.rounds)]
        best = max(runs, key=lambda r: r["rate"])
        row.k = entry_of(best, runs)
        row.tail_notes.append(cpu_note(best))
        self.profile(row, server, url, env, conns)
        return runs

    # --- 5-7. many tenants (a second Keystead with its own data dir) -----------------------

    def start_scale(self):
        if self.scale is None:
            if self.ks is not None:
                self.ks.stop()
            if self.peer is not None:
                self.peer.stop()
            log("starting keystead (scale)")
            self.scale = Keystead(self.args.keystead_bin, self.workdir, "keystead-scale").start()
            # An API on the control plane, synced to every child, for the spread token runs.
            self.scale.api("POST", "/resource-servers", expect=201, json={
                "name": "Bench Scale API", "identifier": "https://scale.bench.example"})
            self.provision_log = []
        return self.scale

    def provision_to(self, n, prefix):
        """Creates child tenants on the scale server until it has n of them (exact ids, asyncio
        client, 8 connections); returns (created, seconds)."""
        ks = self.start_scale()
        have = ks.tenant_count() - 1
        need = n - have
        if need <= 0:
            return 0, 0.0
        ids = [f"{prefix}{i}" for i in range(need)]
        token = ks.token()
        hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

        async def job(conn, tid):
            status, body = await conn.request("POST", "/api/v2/tenants",
                                              json.dumps({"id": tid}), hdr)
            return status

        log(f"provisioning {need:,} tenants (to {n:,})")
        results, secs = bulk(ks.port, ids, job, conns=8)
        bad = [(i, r) for i, r in zip(ids, results) if r != 201]
        self.scale_ids += [i for i, r in zip(ids, results) if r == 201]
        self.provision_log.append({"to": n, "created": need - len(bad), "seconds": secs,
                                   "rate": (need - len(bad)) / secs if secs else None})
        log(f"  {need - len(bad):,} created in {secs:.1f} s ({(need - len(bad)) / secs:,.0f}/s)")
        if bad:
            raise RuntimeError(f"{len(bad)} tenant creations failed, e.g. {bad[0]}")
        return need, secs

    def provision(self):
        row = self.row("tenant provisioning, POST /api/v2/tenants (8 conns)", "tenants/s",
                       "provision", peer=False)
        try:
            ks = self.start_scale()
            env = {"BENCH_METHOD": "POST", "BENCH_HEADERS": "Authorization: Bearer " + ks.token(),
                   "BENCH_UNIQUE_JSON": '{"id":"{id}"}'}
            runs = []
            for rnd in range(self.rounds):
                env["BENCH_UNIQUE_PREFIX"] = f"prov{rnd}-"
                before = ks.tenant_count()
                res = run_wrk(ks.base + "/api/v2/tenants", self.duration, conns=8, env=env,
                              server=ks)
                wrk_ok(res, "provision")
                codes = {}
                for part in re.split(r"[;,]", res["statuses"]):
                    if "=" in part:
                        c, n = part.split("=")
                        codes[c] = codes.get(c, 0) + int(n)
                if set(codes) - {"201"}:
                    raise RuntimeError(f"unexpected statuses {codes}")
                res["created"] = ks.tenant_count() - before
                res["rss_mb"] = ks.rss_mb()
                runs.append(res)
            best = max(runs, key=lambda r: r["rate"])
            row.k = entry_of(best, runs)
            row.tail_notes.append(cpu_note(best))
            env["BENCH_UNIQUE_PREFIX"] = "profile-"
            self.profile(row, ks, ks.base + "/api/v2/tenants", env, conns=8)
            row.notes.append(f"wrk, 8 connections, a unique id per request, {self.duration} s "
                             f"per run, best of {self.rounds} (the runs created "
                             f"{', '.join(str(r['created']) for r in runs)} tenants; every "
                             f"answer 201). Each tenant: record, organization, synced APIs, its "
                             f"Management API, a connection, Default App and Management Client.")
        except Exception as e:  # noqa: BLE001
            self.fail(row, e)

    def sync(self):
        for tier in self.sync_tiers:
            row = self.row(f"sync fan-out: POST /resource-servers, {tier:,} children", "ms",
                           "sync", peer=False)
            row.lower_is_better = True
            try:
                ks = self.start_scale()
                self.provision_to(tier, f"s{tier}-")
                children = ks.tenant_count() - 1
                row.scenario = f"sync fan-out: POST /resource-servers, {children:,} children"
                reps = 3
                creates, deletes = [], []
                for i in range(reps):
                    ident = f"https://sync{tier}-{i}.bench.example"
                    t0 = time.perf_counter()
                    r = ks.api("POST", "/resource-servers", timeout=1800, json={
                        "name": f"Sync {tier} {i}", "identifier": ident,
                        "scopes": [{"value": "read:things"}]})
                    creates.append(time.perf_counter() - t0)
                    check(r, 201, "create resource server")
                    rs = r.json()["id"]
                    # Spot check: a child has the copy when the write has returned.
                    child = self.scale_ids[-1] if self.scale_ids else None
                    if child:
                        ks.api("GET", f"/resource-servers/{rs}", tenant=child, expect=200)
                    t0 = time.perf_counter()
                    ks.api("DELETE", f"/resource-servers/{rs}", timeout=1800, expect=204)
                    deletes.append(time.perf_counter() - t0)
                med = statistics.median(creates) * 1000
                row.k = {"value": med, "p50_ms": med, "rss_mb": ks.rss_mb(),
                         "children": children, "create_ms": [x * 1000 for x in creates],
                         "delete_ms": [x * 1000 for x in deletes]}
                row.notes.append(f"{children:,} child tenants; time from sending the request "
                                 f"to its 201 (every child updated in the same transaction), "
                                 f"median of {reps} (each: {', '.join(f'{x * 1000:,.0f}' for x in creates)} ms); "
                                 f"deleting it again: {', '.join(f'{x * 1000:,.0f}' for x in deletes)} ms. "
                                 f"Tenants provisioned before: {self.provision_summary()}.")
            except Exception as e:  # noqa: BLE001
                self.fail(row, e)

    def provision_summary(self):
        return "; ".join(f"to {p['to']:,}: {p['created']:,} in {p['seconds']:.0f} s "
                         f"({p['rate']:,.0f}/s, asyncio client, 8 conns)"
                         for p in getattr(self, "provision_log", []) if p["rate"]) or "none"

    def scale_scenario(self):
        n = self.scale_tenants
        rss_row = self.row(f"{n:,} tenants in one process: RSS", "MB", "scale", peer=False)
        rss_row.lower_is_better = True
        single = self.row("tokens on the scale server: one tenant", "tokens/s", "scale",
                          peer=False)
        spread = self.row(f"tokens on the scale server: random of {self.spread:,} tenants",
                          "tokens/s", "scale", peer=False)
        try:
            ks = self.start_scale()
            self.provision_to(n, f"x{n}-")
            children = ks.tenant_count() - 1
            time.sleep(1)
            rss = ks.rss_mb()
            du = dir_size_mb(ks.data_dir)
            rss_row.k = {"value": rss, "rss_mb": rss, "children": children, "data_mb": du}
            rss_row.scenario = f"{children:,} tenants in one process: RSS"
            rss_row.notes.append(f"{children:,} child tenants (plus the control plane); VmRSS "
                                 f"after provisioning them; data dir {du:,.0f} MB on disk. "
                                 f"Provisioning: {self.provision_summary()}.")
        except Exception as e:  # noqa: BLE001
            self.fail(rss_row, e)
            single.error = spread.error = "not measured: provisioning failed"
            return
        try:
            # Ids known from the bulk provisioning; listing 100,000 tenants page by page would
            # take long (OFFSET paging), so only when too few are known (smoke sizes).
            pool = list(self.scale_ids)
            if len(pool) < self.spread:
                pool = ks.child_ids()
            rnd = random.Random(5)
            chosen = rnd.sample(pool, min(self.spread, len(pool)))
            hdr = {"Authorization": "Bearer " + ks.token(), "Content-Type": "application/json"}
            form = {"Content-Type": "application/x-www-form-urlencoded"}

            async def job(conn, tid):
                st, body = await conn.request("POST", f"/t/{tid}/api/v2/clients", json.dumps({
                    "name": "bench-m2m", "app_type": "non_interactive",
                    "grant_types": ["client_credentials"]}), hdr)
                if st != 201:
                    raise RuntimeError(f"client in {tid}: {st} {body[:200]!r}")
                c = json.loads(body)
                st, body = await conn.request("POST", f"/t/{tid}/api/v2/client-grants", json.dumps({
                    "client_id": c["client_id"], "audience": "https://scale.bench.example",
                    "scope": []}), hdr)
                if st != 201:
                    raise RuntimeError(f"grant in {tid}: {st} {body[:200]!r}")
                tb = urllib.parse.urlencode({"grant_type": "client_credentials",
                                             "client_id": c["client_id"],
                                             "client_secret": c["client_secret"],
                                             "audience": "https://scale.bench.example"})
                st, body = await conn.request("POST", f"/t/{tid}/oauth/token", tb, form)
                if st != 200:
                    raise RuntimeError(f"token in {tid}: {st} {body[:200]!r}")
                return tb

            log(f"creating clients in {len(chosen):,} tenants")
            bodies, secs = bulk(ks.port, chosen, job, conns=8)
            errs = [b for b in bodies if isinstance(b, Exception)]
            if errs:
                raise RuntimeError(f"{len(errs)} client setups failed, e.g. {errs[0]}")
            spread_file = os.path.join(self.workdir, "spread.txt")
            with open(spread_file, "w") as f:
                for tid, b in zip(chosen, bodies):
                    f.write(f"POST\t/t/{tid}/oauth/token\t{b}\n")
            one = chosen[0]
            env_single = {"BENCH_METHOD": "POST", "BENCH_BODY": bodies[0]}
            env_spread = {"BENCH_REQUESTS": spread_file}
            if self.warmup:
                run_wrk(ks.url("/oauth/token", one), self.warmup, env=env_single)
                run_wrk(ks.base + "/", self.warmup, env=env_spread)
            runs_s, runs_m = [], []
            for _ in range(self.rounds):
                runs_s.append(self.measure(ks, ks.url("/oauth/token", one), env_single,
                                           label=single.scenario))
                runs_m.append(self.measure(ks, ks.base + "/", env_spread, label=spread.scenario))
            for row, runs in ((single, runs_s), (spread, runs_m)):
                best = max(runs, key=lambda r: r["rate"])
                row.k = entry_of(best, runs)
                row.tail_notes.append(cpu_note(best))
            self.profile(spread, ks, ks.base + "/", env_spread)
            ratio = spread.k["value"] / single.k["value"]
            spread.ratio_note = f"{ratio:.2f}x one tenant"
            single.notes.append(f"With {children:,} tenants in the process: client_credentials "
                                f"RS256 tokens from one tenant ({one}), {CONNS} connections, "
                                f"alternating with the next row, best of {self.rounds}.")
            spread.notes.append(f"Each request picks one of {len(chosen):,} randomly chosen "
                                f"tenants (each with its own client, grant and signing key; "
                                f"set up in {secs:.0f} s with the staff token, one warm-up token "
                                f"each). A subset: a client in every one of the {children:,} "
                                f"tenants would take about {children * secs / max(len(chosen), 1) / 60:.0f} "
                                f"minutes to set up. Multi-tenant ÷ single-tenant throughput: "
                                f"{ratio:.2f}.")
        except Exception as e:  # noqa: BLE001
            self.fail(single, e)
            spread.error = single.error

    # --- run --------------------------------------------------------------------------------

    def run(self):
        o = self.only
        try:
            if "idle-rss" in o:
                self.idle_rss()
            if "discovery" in o:
                self.get_scenario("discovery", "discovery",
                                  "/t/bench-rs/.well-known/openid-configuration",
                                  "/.well-known/openid-configuration")
            if "jwks" in o:
                self.get_scenario("jwks", "JWKS", "/t/bench-rs/.well-known/jwks.json", "/jwks")
            if "token-rs256" in o:
                self.token_scenario("RS256")
            if "token-es256" in o:
                self.token_scenario("ES256")
            if "login" in o:
                self.login_scenario()
            if "login-hook" in o:
                self.login_hook_scenario()
            if "mgmt-client" in o:
                self.mgmt_client()
            if "mgmt-users" in o:
                self.mgmt_users()
            if self.peer is not None:
                self.peer.stop()
            # sync first: its tiers need exactly 1,000 and 10,000 children, and the provisioning
            # runs (duration-bound) then add theirs on top of those.
            if "sync" in o:
                self.sync()
            if "provision" in o:
                self.provision()
            if "scale" in o:
                self.scale_scenario()
        finally:
            for srv in (self.ks, self.peer, self.scale):
                if srv is not None:
                    srv.stop()

    def cleanup(self):
        if not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Login helpers
# --------------------------------------------------------------------------------------------

JSON_T = ("basic_json<std::map, std::vector, std::__cxx11::basic_string<char, "
          "std::char_traits<char>, std::allocator<char> >, bool, long, unsigned long, double, "
          "std::allocator, nlohmann::json_abi_v3_11_2::adl_serializer, std::vector<unsigned "
          "char, std::allocator<unsigned char> > >")
STRING_T = "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >"


def shorten_symbol(line):
    """A perf report line without padding and with the longest template names abbreviated."""
    line = re.sub(r"\s+-\s+-\s*$", "", line.rstrip())
    line = line.replace(JSON_T, "basic_json<>").replace(STRING_T, "std::string")
    line = line.replace("nlohmann::json_abi_v3_11_2::", "nlohmann::")
    line = re.sub(r"  +", "  ", line)
    return line if len(line) <= 240 else line[:237] + "..."


def entry_of(best, runs):
    """A table entry from a server's best wrk run (and all its runs, kept in the JSON)."""
    e = {"value": best["rate"], "p50_ms": best["latency_us"]["p50"] / 1000,
         "p99_ms": best["latency_us"]["p99"] / 1000, "rss_mb": best.get("rss_mb"),
         "rounds": runs}
    for k in ("server_cores", "wrk_cores"):
        if k in best:
            e[k] = best[k]
    return e


def cpu_note(best):
    if not best.get("server_cores"):
        return ""
    return (f"CPU in the best run: Keystead {best['server_cores']:.2f} cores "
            f"({best['rate'] / best['server_cores']:,.0f} per CPU-second), wrk "
            f"{best.get('wrk_cores', 0):.2f} cores.")


def pkce():
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


HIDDEN = re.compile(r'name="(state|_csrf)" value="([^"]*)"')


def login_once(ks, tid, client, email):
    """One complete authorization-code login with a fresh cookie jar; returns timings (s)."""
    s = requests.Session()
    t0 = time.perf_counter()
    verifier, challenge = pkce()
    state = secrets.token_hex(8)
    r = s.get(ks.url("/authorize", tid), allow_redirects=False, timeout=60, params={
        "response_type": "code", "client_id": client["client_id"], "redirect_uri": CALLBACK,
        "scope": "openid profile email", "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256"})
    if r.status_code != 302 or "/u/login" not in r.headers.get("Location", ""):
        raise RuntimeError(f"/authorize: {r.status_code} {r.headers.get('Location')}")
    page = s.get(urllib.parse.urljoin(r.url, r.headers["Location"]), timeout=60)
    fields = dict(HIDDEN.findall(page.text))
    if page.status_code != 200 or "state" not in fields:
        raise RuntimeError(f"/u/login page: {page.status_code}")
    t1 = time.perf_counter()
    r = s.post(page.url.split("?")[0], allow_redirects=False, timeout=60, data={
        "state": fields["state"], "_csrf": fields.get("_csrf", ""), "username": email,
        "password": PASSWORD})
    t2 = time.perf_counter()
    loc = r.headers.get("Location", "")
    hops = 0
    while r.status_code == 302 and not loc.startswith(CALLBACK) and hops < 5:
        r = s.get(urllib.parse.urljoin(r.url, loc), allow_redirects=False, timeout=60)
        loc = r.headers.get("Location", "")
        hops += 1
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(loc).query))
    if not loc.startswith(CALLBACK) or "code" not in q or q.get("state") != state:
        raise RuntimeError(f"POST /u/login: {r.status_code} {loc[:200]} {r.text[:200]}")
    r = s.post(ks.url("/oauth/token", tid), timeout=60, data={
        "grant_type": "authorization_code", "client_id": client["client_id"],
        "client_secret": client["client_secret"], "code": q["code"], "redirect_uri": CALLBACK,
        "code_verifier": verifier})
    if r.status_code != 200 or "id_token" not in r.json():
        raise RuntimeError(f"code exchange: {r.status_code} {r.text[:200]}")
    t3 = time.perf_counter()
    s.close()
    return {"total": t3 - t0, "post": t2 - t1}


def argon2_params(ks, tid):
    """m, t, p of the tenant's stored password hashes (from the staff export)."""
    doc = ks.api("GET", f"/tenants/{tid}/export", expect=200).json()
    for rec in doc["records"]:
        h = rec.get("data", {}).get("_password") if rec["kind"] == "user" else None
        if h:
            m = re.match(r"\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", h)
            if m:
                return {"m": int(m.group(1)), "t": int(m.group(2)), "p": int(m.group(3))}
    raise RuntimeError("no argon2id hash found in the export")


def argon2_time(params, reps=5):
    """Median seconds of one argon2id hash with these parameters, through libargon2 (the library
    Keystead links)."""
    name = ctypes.util.find_library("argon2") or "libargon2.so.1"
    lib = ctypes.CDLL(name)
    f = lib.argon2id_hash_raw
    f.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p,
                  ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                  ctypes.c_size_t]
    f.restype = ctypes.c_int
    pwd = PASSWORD.encode()
    salt = os.urandom(16)
    out = ctypes.create_string_buffer(32)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        rc = f(params["t"], params["m"], params["p"], pwd, len(pwd), salt, len(salt), out, 32)
        times.append(time.perf_counter() - t0)
        if rc != 0:
            raise RuntimeError(f"argon2id_hash_raw: {rc}")
    return statistics.median(times)


# --------------------------------------------------------------------------------------------
# Misc
# --------------------------------------------------------------------------------------------

def jwt_header(token):
    seg = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def pct(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def dir_size_mb(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total / 1e6


def sh(cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(args):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if not cpu:
        cpu = next((l.split(":", 1)[1].strip() for l in sh(["lscpu"]).splitlines()
                    if l.startswith("Model name")), "unknown")
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    build = os.path.dirname(os.path.dirname(os.path.abspath(args.keystead_bin)))
    compiler = ""
    try:
        with open(os.path.join(build, "meson-logs", "meson-log.txt"), errors="replace") as f:
            m = re.search(r"C\+\+ compiler for the host machine: (.*)", f.read())
            compiler = m.group(1).strip() if m else ""
    except OSError:
        pass
    if not compiler:
        compiler = (sh(["c++", "--version"]).splitlines() or [""])[0]
    buildtype = provider = ""
    try:
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
        buildtype = f"{opts.get('buildtype')}, b_ndebug={opts.get('b_ndebug')}"
        if "openssl" in opts:
            buildtype += f", openssl={opts.get('openssl')}"
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(build, "meson-logs", "meson-log.txt"), errors="replace") as f:
            m = re.findall(r"signing provider\s*:\s*(\S+)", f.read())
            provider = m[-1] if m else ""
    except OSError:
        pass
    if not provider:
        provider = "mbedtls (no signing-provider option in this build)"
    commit = sh(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT)
    # Names only: `sh` strips its output, which would cut the first line of a porcelain status.
    dirty = sh(["git", "diff", "--name-only", "HEAD", "--", ".", ":!bench"], cwd=ROOT).splitlines()
    if commit and dirty:
        commit += " + uncommitted changes (" + ", ".join(dirty[:8]) + (
            ", …" if len(dirty) > 8 else "") + ")"
    peer_ver = ""
    try:
        with open(os.path.join(PEER_DIR, "node_modules", "oidc-provider", "package.json")) as f:
            peer_ver = json.load(f)["version"]
    except (OSError, ValueError):
        pass
    fs = sh(["df", "-T", tempfile.gettempdir()]).splitlines()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": socket.gethostname(),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "os": sh(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "compiler": compiler,
        "build": buildtype,
        "signing_provider": provider,
        "git_commit": commit,
        "node": sh(["node", "--version"]),
        "oidc_provider": peer_ver,
        "wrk": (sh(["wrk", "--version"]).splitlines() or [""])[0],
        "python": platform.python_version(),
        "tmp_filesystem": fs[-1].split()[1] if len(fs) > 1 else "",
        "load_before": os.getloadavg(),
    }


def output_paths(args):
    if args.out:
        base = args.out[:-3] if args.out.endswith(".md") else args.out
        return base + ".md", base + ".json"
    host = socket.gethostname().split(".")[0].lower()
    host = re.sub(r"[^a-z0-9-]", "", host)
    if not host or re.fullmatch(r"[0-9a-f]{8,}", host):
        host = "run"
    day = datetime.date.today().isoformat()
    d = os.path.join(BENCH, "results")
    os.makedirs(d, exist_ok=True)
    if args.smoke:
        # Smoke runs prove the harness works; their files are not results (ignored by git).
        return os.path.join(d, f"{day}-{host}-smoke.md.tmp"), os.path.join(d, f"{day}-{host}-smoke.json.tmp")
    base = os.path.join(d, f"{day}-{host}")
    n = 1
    while os.path.exists(base + ".md"):
        n += 1
        base = os.path.join(d, f"{day}-{host}-{n}")
    return base + ".md", base + ".json"


def verdicts(rows):
    """One line per target of issue 5 whose scenario ran: met, or not met and by how much."""
    out = []

    def find(prefix):
        """(row, None) when measured, (None, reason) when it ran but failed, (None, None) when
        the scenario was not selected."""
        for r in rows:
            if r.scenario.startswith(prefix):
                if r.error or not r.k:
                    return None, r.error or "not measured"
                return r, None
        return None, None

    def line(prefix, what, fn):
        r, why = find(prefix)
        if r:
            out.append(fn(r))
        elif why:
            out.append(f"{what}: {why}")

    def share(x, goal):
        return "met" if x >= goal else f"NOT met ({x / goal:.0%} of the target)"

    def per_cpu(r):
        q = r.k.get("per_cpu_ratio")
        return f" (per CPU-second of each server: {q:.2f}x)" if q else ""

    def bound(x, limit):
        return "met" if x < limit else f"NOT met ({x / limit:.1f}x the bound)"

    for label in ("discovery", "JWKS"):
        line(f"{label} (GET", label, lambda r: (
            f"{label}: {r.ratio():.2f}x the peer (target ≥ 5x): {share(r.ratio(), 5)}"
            + per_cpu(r) if r.ratio() else f"{label}: no peer number"))
        line(f"{label} at half", f"{label} p99 at half rate", lambda r: (
            f"{label} p99 at half the peak rate: {r.k['p99_ms']:.2f} ms (target < 5 ms): "
            f"{bound(r.k['p99_ms'], 5)}"))
    for alg, goal in (("RS256", 1.5), ("ES256", 3.0)):
        line(f"client_credentials token, {alg}", f"tokens {alg}", lambda r: (
            f"token issuance {alg}: {r.ratio():.2f}x the peer (target ≥ {goal}x): "
            f"{share(r.ratio(), goal)}" + per_cpu(r) if r.ratio() else
            f"tokens {alg}: no peer number"))
    for r in [x for x in rows if x.key == "login" and x.k]:
        q = r.k["value"] / r.k["limit_per_s"]
        out.append(f"password login, {r.k['concurrency']} concurrent: {q:.0%} of the argon2id "
                   f"limit (target ≥ 80%): {share(q, 0.8)}; meanwhile GET /healthz (event loop) "
                   f"took at most {r.k['healthz_max_ms']:.1f} ms, a client_credentials token "
                   f"(worker pool) p99 {r.k['token_p99_ms']:.1f} ms, max "
                   f"{r.k['token_max_ms']:.1f} ms (one hash: {r.k['hash_ms']:.1f} ms)")
    for r in [x for x in rows if x.key == "login" and x.error]:
        out.append(f"{r.scenario}: {r.error}")
    line("Management API: GET /clients/{id}", "Management API get-by-id", lambda r: (
        f"Management API get-by-id: {r.k['value']:,.0f}/s (target ≥ 20,000/s): "
        f"{share(r.k['value'], 20000)}"))
    syncs = [r for r in rows if r.key == "sync" and r.k]
    if syncs:
        r = max(syncs, key=lambda r: r.k["children"])
        out.append(f"sync fan-out to {r.k['children']:,} tenants: {r.k['value']:,.0f} ms "
                   f"(target < 1 s at 10,000): {bound(r.k['value'], 1000)}"
                   + ("" if r.k["children"] >= 10000 else " — fewer tenants than the target's"))
    else:
        line("sync fan-out", "sync fan-out", lambda r: "")
    line("tenant provisioning", "provisioning", lambda r: (
        f"provisioning: {r.k['value']:,.0f} tenants/s (target ≥ 200/s): {share(r.k['value'], 200)}"))
    r = next((x for x in rows if x.key == "scale" and "RSS" in x.scenario), None)
    if r and r.k:
        out.append(f"{r.k['children']:,} tenants: {r.k['value']:,.0f} MB RSS (target < 1 GiB at "
                   f"100,000): {bound(r.k['value'], 1024)}"
                   + ("" if r.k["children"] >= 100000 else " — fewer tenants than the target's"))
    elif r:
        out.append(f"tenants at scale: {r.error}")
    s1, why1 = find("tokens on the scale server: one tenant")
    s2, why2 = find("tokens on the scale server: random")
    if s1 and s2:
        q = s2.k["value"] / s1.k["value"]
        out.append(f"multi-tenant tokens: {q:.0%} of single-tenant (target ≥ 90%): "
                   + ("met" if q >= 0.9 else "NOT met"))
    elif why1 or why2:
        out.append(f"multi-tenant tokens: {why1 or why2}")
    line("idle RSS", "idle RSS", lambda r: (
        f"idle RSS: {r.k['value']:.1f} MB (target < 20 MB): {bound(r.k['value'], 20)}"))
    return out


def render(bench, info, elapsed):
    mode = "smoke (sizes reduced; numbers prove the harness works, nothing more)" \
        if bench.smoke else "full"
    lines = [f"# Keystead benchmark, {info['date']}", "",
             f"Mode: **{mode}**; {bench.duration} s per measured run (+{bench.warmup} s warm-up), "
             f"best of {bench.rounds} rounds, Keystead and the peer alternating A B A B; "
             f"{elapsed / 60:.1f} minutes in all. Produced by `bench/run"
             + (" --smoke" if bench.smoke else "") + "`.", "",
             "## Machine", "", "| | |", "| --- | --- |"]
    others = info.get("cpu_others_cores") or 0.0
    before = (info.get("load_before") or (0.0,))[0]
    if others > 0.1:
        lines[-4:-4] = [f"**Warning: the machine was not idle**: other processes used "
                        f"{others:.2f} of the {info.get('nproc')} cores on average during the run "
                        f"(1-minute load average before it: {before:.2f}); the numbers are low "
                        f"and noisy.", ""]
    for k in ("nproc", "cpu", "memory", "kernel", "os", "compiler", "build", "signing_provider",
              "git_commit", "node", "oidc_provider", "wrk", "python", "tmp_filesystem", "host"):
        lines.append(f"| {k} | {info.get(k, '')} |")
    lb, la = info.get("load_before"), info.get("load_after")
    if lb:
        lines.append(f"| load average before / after (after includes this run) | "
                     f"{' '.join(f'{x:.2f}' for x in lb)} / "
                     f"{' '.join(f'{x:.2f}' for x in la or ())} |")
    if "cpu_others_s" in info:
        lines.append(f"| CPU used by other processes during the run | "
                     f"{info['cpu_others_s']:,.0f} core-seconds ({info['cpu_others_cores']:.2f} "
                     f"cores on average; this run: {info['cpu_this_run_s']:,.0f} core-seconds) |")
    lines += ["", "## Results", "",
              f"Keystead: `keystead serve` with {THREADS} event-loop threads "
              f"(KEYSTEAD_THREADS={THREADS}), fresh data dir under {tempfile.gettempdir()}. "
              f"Peer: node-oidc-provider {info.get('oidc_provider')} on node {info.get('node')}, "
              f"a node:cluster of {THREADS} workers. Load: wrk ({WRK_THREADS} threads) or the "
              f"Python driver, on the same 2 cores. "
              f"ratio = keystead ÷ peer; p50, p99 and RSS are \"keystead / peer\" where both "
              f"ran; RSS is VmRSS after the scenario (the peer's summed over its processes).", "",
              table(bench.rows), "", "## Targets (issue 5)", ""]
    lines += [f"- {v}" for v in verdicts(bench.rows)]
    lines += ["", "## How each row was measured", ""]
    for r in bench.rows:
        notes = [n for n in r.notes + r.tail_notes if n]
        if notes:
            lines.append(f"- **{r.scenario}**: " + " ".join(notes))
        elif r.error:
            lines.append(f"- **{r.scenario}**: {r.error}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="every scenario for ~1 s, small sizes")
    ap.add_argument("--duration", type=float, help="seconds per measured run (default 10, smoke 1)")
    ap.add_argument("--rounds", type=int, help="rounds per server (default 2)")
    ap.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                    help="comma-separated scenarios: " + ",".join(SCENARIOS))
    ap.add_argument("--out", help="write FILE.md and FILE.json (default bench/results/DATE-HOST)")
    ap.add_argument("--keystead-bin", default=os.path.join(ROOT, "build-release", "server", "keystead"))
    ap.add_argument("--scale-tenants", type=int, help="tenants for the scale scenario")
    ap.add_argument("--users", type=int, help="users in the Management API tenant")
    ap.add_argument("--spread", type=int, help="tenants with a client for the spread token run")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dirs")
    ap.add_argument("--profile", action="store_true",
                    help="one more run per Keystead scenario under perf; flat profiles go to "
                         "RESULTS-profiles/")
    args = ap.parse_args()
    if args.duration is not None:
        args.duration = max(1, int(round(args.duration)))
    if args.only:
        unknown = set(args.only) - set(SCENARIOS)
        if unknown:
            ap.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; known: {', '.join(SCENARIOS)}")
    if not os.access(args.keystead_bin, os.X_OK):
        ap.error(f"{args.keystead_bin} is not an executable (build first, or use bench/run)")

    bench = Bench(args)
    info = machine(args)
    md_path, json_path = output_paths(args)
    bench.profile_dir = re.sub(r"\.md(\.tmp)?$", "", md_path) + "-profiles"
    t0 = time.time()
    busy0, ours0 = machine_busy_s(), self_cpu_s() + children_cpu_s()
    try:
        bench.run()
    except KeyboardInterrupt:
        log("interrupted")
        bench.broken = True
    except Exception:  # noqa: BLE001 - the harness itself broke; still write what we have
        log("harness error:\n" + traceback.format_exc())
        bench.broken = True
    finally:
        bench.cleanup()
    elapsed = time.time() - t0
    info["load_after"] = os.getloadavg()
    # Everything this run started has been waited for, so its CPU time (wrk, perf, both servers
    # and their workers) is in RUSAGE_CHILDREN; the rest of the machine's busy time was used by
    # other processes (and by the kernel's interrupt work, a little of which is ours).
    busy = machine_busy_s() - busy0
    ours = self_cpu_s() + children_cpu_s() - ours0
    info["cpu_this_run_s"] = ours
    info["cpu_others_s"] = max(busy - ours, 0.0)
    info["cpu_others_cores"] = info["cpu_others_s"] / elapsed if elapsed else 0.0
    md = render(bench, info, elapsed)
    with open(md_path, "w") as f:
        f.write(md)
    with open(json_path, "w") as f:
        json.dump({"machine": info, "mode": "smoke" if bench.smoke else "full",
                   "duration_s": bench.duration, "rounds": bench.rounds,
                   "elapsed_s": elapsed, "results": [r.as_json() for r in bench.rows]},
                  f, indent=1, default=str)
    print()
    print(table(bench.rows))
    print()
    for v in verdicts(bench.rows):
        print("  " + v)
    print(f"\nwritten: {os.path.relpath(md_path, ROOT)}, {os.path.relpath(json_path, ROOT)} "
          f"({elapsed:.0f} s)")
    return 1 if bench.broken else 0


if __name__ == "__main__":
    sys.exit(main())
