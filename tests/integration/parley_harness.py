"""Start, watch and stop a real parleyd for one test.

A ParleyServer owns a temporary directory holding its config, data and log,
listens only on 127.0.0.1 (ports picked by binding port 0), and is stopped by
SIGTERM sent to its own PID (SIGKILL only if it does not exit in time).

The self-signed certificate parleyd makes at its first start (an RSA key:
0.1-1 s of a loaded machine) is made once per host and build and reused by
every later start from a cache (see CertCache); cached_cert=False lets a
server make its own.
"""

import atexit
import fcntl
import os
import re
import resource
import shutil
import signal
import random
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DEFAULT_LIMITS = {
    "max_stanza_bytes": 262144,
    "max_xml_depth": 32,
    "max_xml_attributes": 64,
    "max_attribute_bytes": 8192,
    "max_connections_per_ip": 1000,
    "max_auth_failures": 3,
    "auth_timeout": 30,
    "tls_handshake_timeout": 10,
    "max_bytes_per_second": 0,
    "max_sessions_per_user": 100,
}

# Lines that mean a sanitizer caught something, whatever the exit code says.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "runtime error:",
)


def required_binary(env_name):
    """The path in $env_name; raises (never skips) when it is missing."""
    path = os.environ.get(env_name)
    if not path:
        raise RuntimeError(
            f"${env_name} is not set: run the integration tests through ctest "
            f"(ctest -L integration) or export {env_name}=/path/to/binary")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise RuntimeError(f"${env_name}={path} is not an executable file")
    return path


_ports_given = set()
# One lock file per port given, held (open, flock'ed) until this process ends:
# ctest runs several test processes side by side, and a port one of them gave
# to a server that is stopped for a restart is free to bind in that window, so
# another process could pick it too. Both servers would then share it through
# SO_REUSEPORT (before parleyd refused a port in use) or the restart would fail.
_PORT_LOCK_DIR = Path(tempfile.gettempdir()) / f"parley-test-ports-{os.getuid()}"
_port_locks = []
# A suite that starts a few hundred servers holds as many lock files as it was
# given ports, beside its clients' sockets: room above a 1,024 soft limit.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
_want = 65536 if _hard == resource.RLIM_INFINITY else min(_hard, 65536)
if _soft != resource.RLIM_INFINITY and _soft < _want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_want, _hard))


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A port nothing listens on, never the same one twice in this process.

    Picked below the kernel's ephemeral range and checked by binding it: a
    port from bind(("127.0.0.1", 0)) is an ephemeral one, which any client
    connection of the test processes running side by side could take as its
    local port before parleyd binds it ("cannot listen ...: Address already in
    use" in test_websocket, with ctest -j3); and the kernel can hand back a
    just-closed ephemeral port at once (a config with two listeners on one
    port was a flaky start-up failure)."""
    low, _ = _ephemeral_range()
    rng = random.Random()
    while True:
        port = rng.randrange(10000, max(10001, low))
        if port in _ports_given or not _claim(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # stays claimed: never tried again by anyone
        _ports_given.add(port)
        return port


def _claim(port):
    """True if no other live test process has claimed `port`; it is ours now."""
    _PORT_LOCK_DIR.mkdir(exist_ok=True)
    fd = os.open(_PORT_LOCK_DIR / str(port), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _port_locks.append(fd)  # released by the kernel when this process exits
    return True


class CertCache:
    """Certificates parleyd made at a first start, kept for the next ones.

    The cache lives in $PARLEY_BUILD_DIR/test-cert-cache, shared by the test
    processes ctest runs side by side (files are replaced atomically), or in
    a temporary directory for this process. A cached certificate older than
    the parleyd binary is made again, by the next start that needs it.
    """

    _HOST = re.compile(r"[A-Za-z0-9.*-]{1,253}")

    def __init__(self, directory=None):
        if directory is None:
            build = os.environ.get("PARLEY_BUILD_DIR")
            if build:
                directory = Path(build) / "test-cert-cache"
            else:
                directory = Path(tempfile.mkdtemp(prefix="parley-cert-cache-"))
                atexit.register(shutil.rmtree, directory, True)
        self.dir = Path(directory)

    def _path(self, host):
        return self.dir / f"{host}.pem" if self._HOST.fullmatch(host) else None

    def fetch(self, host, dest, parleyd):
        """Copies the cached certificate of `host` to `dest`; False if there is
        none as recent as `parleyd`."""
        src = self._path(host)
        try:
            if src is None or src.stat().st_mtime < os.stat(parleyd).st_mtime:
                return False
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        except FileNotFoundError:
            return False
        os.chmod(dest, 0o600)
        return True

    def store(self, host, made):
        """Keeps the certificate parleyd made for `host`."""
        target = self._path(host)
        if target is None or not made.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{host}.")
        os.close(fd)
        shutil.copyfile(made, tmp)
        os.replace(tmp, target)


CERT_CACHE = CertCache()


def _yaml_scalar(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    return "'" + text.replace("'", "''") + "'"


def to_yaml(value, indent=0):
    """A small YAML emitter for the config: dicts, lists and scalars only."""
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        for key, item in value.items():
            if isinstance(item, dict) and item:
                lines.append(f"{pad}{key}:\n" + to_yaml(item, indent + 2))
            elif isinstance(item, list) and item:
                lines.append(f"{pad}{key}:\n" + to_yaml(item, indent + 2))
            elif isinstance(item, dict):
                lines.append(f"{pad}{key}: {{}}\n")
            elif isinstance(item, list):
                lines.append(f"{pad}{key}: []\n")
            else:
                lines.append(f"{pad}{key}: {_yaml_scalar(item)}\n")
        return "".join(lines)
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                body = to_yaml(item, indent + 2)
                lines.append(pad + "- " + body[indent + 2:])
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}\n")
        return "".join(lines)
    return pad + _yaml_scalar(value) + "\n"


class ParleyServer:
    """One parleyd process with its own config, data directory and log."""

    def __init__(self, base_dir, parleyd, parleyctl, name="parley", hosts=("localhost",),
                 limits=None, starttls_required=True, extra_listeners=(), modules=None,
                 workers=2, loglevel=None, module_paths=None, host_config=None,
                 cached_cert=True, storage=None):
        self.parleyd = parleyd
        self.parleyctl = parleyctl
        self.name = name
        self.dir = Path(base_dir) / name
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "parley.yml"
        self.log_path = self.dir / "parleyd.log"
        self.hosts = list(hosts)
        self.domain = self.hosts[0]
        self.c2s_port = free_port()
        self.tls_port = free_port()
        self.limits = dict(DEFAULT_LIMITS)
        self.limits.update(limits or {})
        listen = [
            {"port": self.c2s_port, "ip": "127.0.0.1", "module": "c2s",
             "starttls_required": starttls_required},
            {"port": self.tls_port, "ip": "127.0.0.1", "module": "c2s", "tls": True},
        ]
        listen.extend(extra_listeners)
        if loglevel is None:
            loglevel = os.environ.get("PARLEY_TEST_LOGLEVEL", "debug")
        self.config = {
            "loglevel": loglevel,
            "hosts": self.hosts,
            "workers": workers,
            "data_dir": str(self.data_dir),
            "certfiles": [],
            "listen": listen,
            # storage: extra keys (e.g. the postgresql backend's) over the SQLite file's.
            "storage": {"type": "sqlite", "path": str(self.data_dir / "parley.db"), **(storage or {})},
            "control_socket": str(self.data_dir / "parley.sock"),
            "limits": self.limits,
            "modules": modules if modules is not None else {"mod_disco": {}, "mod_ping": {}},
        }
        if module_paths is not None:
            self.config["module_paths"] = [str(p) for p in module_paths]
        if host_config is not None:
            self.config["host_config"] = host_config
        self.cached_cert = cached_cert
        self.proc = None
        self.returncode = None
        self._log_file = None

    # -- lifecycle ---------------------------------------------------------

    def write_config(self):
        self.config_path.write_text(
            "# written by tests/integration/parley_harness.py\n" + to_yaml(self.config))

    def cert_path(self, host):
        """Where parleyd keeps the certificate it makes for `host`."""
        return self.data_dir / "certs" / f"{host}.pem"

    def start(self, timeout=30):
        assert self.proc is None, "server already started"
        self.write_config()
        # Hosts whose certificate parleyd makes now: cached once it is up.
        to_cache = []
        if self.cached_cert and not self.config.get("certfiles"):
            for host in self.hosts:
                dest = self.cert_path(host)
                if not dest.exists() and not CERT_CACHE.fetch(host, dest, self.parleyd):
                    to_cache.append(host)
        self._log_file = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen(
            [self.parleyd, "--config", str(self.config_path)],
            cwd=self.dir, stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=subprocess.STDOUT)
        ports = [(entry.get("ip", "127.0.0.1"), entry["port"]) for entry in self.config["listen"]]
        deadline = time.monotonic() + timeout
        pending = list(ports)
        while pending:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise RuntimeError(
                    f"parleyd exited with {self.returncode} during start-up\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"parleyd did not accept on ports {pending} within {timeout}s\n{self.log()}")
            ip, port = pending[0]
            try:
                with socket.create_connection((ip, port), timeout=0.5):
                    pending.pop(0)
            except OSError:
                time.sleep(0.01)  # a refused connect costs nothing: look again soon
        for host in to_cache:
            CERT_CACHE.store(host, self.cert_path(host))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM, wait; SIGKILL after timeout. Returns (returncode, killed)."""
        if self.proc is None:
            return self.returncode, False
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                killed = True
        self.returncode = self.proc.returncode
        self.proc = None
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        return self.returncode, killed

    def restart(self, timeout=30):
        code, killed = self.stop()
        assert not killed and code == 0, f"parleyd exit {code} (killed={killed})\n{self.log()}"
        return self.start(timeout)

    # -- inspection --------------------------------------------------------

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def sanitizer_reports(self):
        return [line for line in self.log().splitlines()
                if any(marker in line for marker in SANITIZER_MARKERS)]

    # -- administration ----------------------------------------------------

    def ctl(self, *args, timeout=60):
        return subprocess.run(
            [self.parleyctl, "--config", str(self.config_path), *args],
            cwd=self.dir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout)

    def control(self, *args, timeout=60):
        """One request on the running server's control socket, spoken here as
        parleyctl speaks it (core/control/netstring.hpp: the argv as
        netstrings, then a newline; the answer "ok" or "error", a newline and
        a body, then EOF). Returns (ok, body), or None when no server listens.
        A parleyctl process per account cost the suites more than their tests
        under the sanitizers (ASan's start-up: ~0.2 s of CPU a process)."""
        path = self.config.get("control_socket")
        if self.proc is None or not path or not os.path.exists(path):
            return None
        request = b"".join(b"%d:%s," % (len(a), a) for a in (str(x).encode() for x in args)) + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            try:
                s.connect(path)
            except (FileNotFoundError, ConnectionRefusedError):
                return None
            s.sendall(request)
            reply = bytearray()
            while chunk := s.recv(65536):
                reply += chunk
        status, _, body = bytes(reply).decode(errors="replace").partition("\n")
        assert status in ("ok", "error"), f"malformed control answer: {reply!r}"
        return status == "ok", body

    def register(self, user, password, host=None):
        host = host or self.domain
        answer = self.control("register", user, host, password)
        if answer is not None:
            assert answer[0], f"register {user} {host} failed: {answer[1]}"
            return f"{user}@{host}"
        # Not running: parleyctl writes the account into the store itself.
        if not self.config_path.exists():
            self.write_config()
        result = self.ctl("register", user, host, password)
        assert result.returncode == 0, (
            f"parleyctl register {user} {host} failed ({result.returncode}):\n"
            f"{result.stdout}{result.stderr}")
        return f"{user}@{host}"


# -- PostgreSQL --------------------------------------------------------------------

PG_BIN = Path(os.environ.get("PARLEY_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_SUPERUSER = "parley"


def _pg_run_as():
    """The user PostgreSQL runs as: it refuses to run as root, and CI runs as
    root, so then "nobody" (no login, no files of its own); else ourselves."""
    return "nobody" if os.geteuid() == 0 else None


def _chown_tree(path, user):
    if user is None:
        return
    import pwd
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1, for the tests that use
    the postgresql backend: a copy of a cluster made by initdb (made once per
    build and kept in $PARLEY_BUILD_DIR/test-pg-template, since initdb takes
    seconds on a loaded machine), in its own temporary directory, run by
    `postgres` itself as the unprivileged user (the Popen's PID is the
    postmaster's: stopped by that PID, SIGINT = fast shutdown). Trust
    authentication on loopback: test data only. fsync is off (a crash of the
    machine is not a case the tests make); synchronous_commit stays on, so a
    commit acknowledged to parleyd survives a stop of PostgreSQL."""

    def __init__(self):
        self.user = _pg_run_as()
        self.dir = Path(tempfile.mkdtemp(prefix="parley-pg-"))
        self.data = self.dir / "data"
        self.port = None
        self.proc = None
        self.log_path = self.dir / "postgres.log"
        self._databases = 0
        try:
            self._template()
            _chown_tree(self.dir, self.user)
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _template(self):
        build = os.environ.get("PARLEY_BUILD_DIR")
        cache = Path(build) / "test-pg-template" if build else None
        if cache is not None and (cache / "PG_VERSION").exists():
            shutil.copytree(cache, self.data, symlinks=True)
            return
        made = self.dir / "initdb"
        made.mkdir()
        _chown_tree(self.dir, self.user)
        result = subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(made), "-A", "trust", "-U", PG_SUPERUSER,
             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            user=self.user, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        if cache is not None:
            # Atomically: ctest runs suites side by side.
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=cache.parent, prefix=".test-pg-template."))
            shutil.copytree(made, tmp / "data", symlinks=True)
            try:
                os.rename(tmp / "data", cache)
            except OSError:
                pass  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
        os.rename(made, self.data)

    def start(self, timeout=60):
        assert self.proc is None, "postgres already running"
        if self.port is None:
            self.port = free_port()
        log = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-k", str(self.dir),
             "-c", "listen_addresses=127.0.0.1", "-p", str(self.port),
             "-c", "fsync=off", "-c", "max_connections=200", "-c", "shared_buffers=16MB"],
            user=self.user, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        _PG_RUNNING.add(self)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                _PG_RUNNING.discard(self)
                raise RuntimeError(f"postgres exited with {code} during start-up\n{self.log()}")
            ready = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1",
                 "-U", PG_SUPERUSER, "-d", "postgres"],
                stdin=subprocess.DEVNULL)
            if ready.returncode == 0:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not accept within {timeout}s\n{self.log()}")
            time.sleep(0.05)

    def stop(self, timeout=30, immediate=False):
        """Fast shutdown (SIGINT to the postmaster's PID): running transactions
        are rolled back, committed ones are on disk. The port is kept, so that
        start() brings it back where parleyd looks for it. immediate: SIGQUIT,
        no shutdown checkpoint (for a cluster about to be deleted)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT if immediate else signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        _PG_RUNNING.discard(self)

    def destroy(self):
        self.stop(immediate=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def url(self, database="postgres"):
        # No TLS or GSSAPI negotiation on loopback: libpq would otherwise try a
        # GSSAPI-encrypted connection first (Kerberos libraries, whose one-time
        # allocations LeakSanitizer reports in the ASan run) and TLS next.
        return (f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{database}"
                "?sslmode=disable&gssencmode=disable")

    def psql(self, sql, database="postgres"):
        return psql(self.url(database), sql)

    def create_database(self, prefix="t"):
        """A new empty database (one per test: no test sees another's rows);
        returns its URL."""
        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)


_PG_RUNNING = set()


def psql(url, sql):
    """Runs `sql` on the database at `url`; its rows as psql -At prints them."""
    result = subprocess.run(
        [str(PG_BIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed ({result.returncode}): {sql}\n{result.stdout}{result.stderr}")
    return result.stdout


@atexit.register
def _stop_postgres_left():
    for server in list(_PG_RUNNING):
        server.stop()


def with_postgres(argv):
    """Runs argv with $PARLEY_TEST_PG_URL naming a fresh database on a
    PostgreSQL started for it, then stops that PostgreSQL: how ctest runs the
    storage unit tests. Returns the command's exit code."""
    pg = PostgresServer()
    try:
        pg.start()
        url = pg.create_database("unit")
        # The server's NOTICEs ("schema ... does not exist, skipping", hundreds
        # a run) go to stderr through libpq: a failing case's report was lost
        # among them in CI's excerpt of the output.
        database = url.rsplit("/", 1)[1].split("?", 1)[0]
        pg.psql(f'ALTER DATABASE "{database}" SET client_min_messages = warning')
        env = dict(os.environ, PARLEY_TEST_PG_URL=url)
        code = subprocess.run(argv, env=env).returncode
        if code != 0:
            print(f"--- postgres log ({pg.log_path}), its end\n{pg.log()[-4000:]}")
        return code
    finally:
        pg.destroy()


if __name__ == "__main__":
    import sys
    if len(sys.argv) < 3 or sys.argv[1] != "with-postgres":
        sys.exit("usage: parley_harness.py with-postgres COMMAND [ARGS...]")
    sys.exit(with_postgres(sys.argv[2:]))


def stop_child(proc, grace=10):
    """Ends a client process a test started (a node script, say): SIGTERM
    first, so that it can close what it started itself (puppeteer closes its
    Chromium on SIGTERM; a SIGKILLed node leaves it running, orphaned, for the
    rest of the test run), then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def expect_browser_echo(client, proc, body, timeout=90):
    """The message `body` that a browser client script (`proc`, a node script
    whose stdout is a pipe) sends `client`; if it does not come in time, fails
    with what the script printed (its own error: the chat box it typed into,
    say), which a bare timeout would hide."""
    try:
        return client.expect_message(body, timeout=timeout)
    except TimeoutError:
        stop_child(proc)
        raise AssertionError(f"no {body!r} within {timeout} s; the browser script printed:\n"
                             + proc.stdout.read()) from None
