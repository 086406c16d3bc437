"""Fixtures for Parley's integration tests: a real parleyd on 127.0.0.1.

Run through ctest (`ctest -L integration`), which sets $PARLEYD, $PARLEYCTL
and $GLOOX_CLIENT, or by hand:

    PARLEYD=build/core/parleyd PARLEYCTL=build/tools/parleyctl \
    GLOOX_CLIENT=build/tests/integration/parley_gloox_client \
    /usr/bin/python3 -m pytest -q tests/integration

Nothing here skips: a missing binary is an error, and a test that tries to
skip is turned into a failure.
"""

import os

import pytest

from gloox_driver import GlooxClient
from parley_harness import ParleyServer, PostgresServer, required_binary
from rawxmpp import RawClient

PASSWORD = "s3cret-pass"



def server_with_users(server_factory, users, **kwargs):
    """A started server (server_factory's keyword arguments) with each of `users`
    registered with PASSWORD."""
    server = server_factory(**kwargs)
    for user in users:
        server.register(user, PASSWORD)
    return server


def logged_in(server, raw_factory, user, resource="r", presence=False, **client_kwargs):
    """A RawClient of `user` on the STARTTLS port, bound to `resource`, available if
    `presence` (client_kwargs go to RawClient: domain=...)."""
    c = raw_factory(server.c2s_port, **client_kwargs)
    c.login(user, PASSWORD, resource=resource, presence=presence)
    return c


# Set by CTest for the ASan and TSan builds (tests/integration/CMakeLists.txt).
SANITIZED = bool(os.environ.get("PARLEY_SANITIZED"))


def old_tables_left(db_path, tables, timeout=10):
    """Which of `tables` (the modules' old SQLite tables, before the typed stores)
    are still in the file at db_path, each with its row count: {} as soon as all
    are gone, else what is left when `timeout` passed. The moves delete their rows
    on the main writer and then drop each table that has none left
    (parley::OldTables), so a test polls, each look a fresh read-only connection;
    a table that keeps another host's rows is never dropped and costs the timeout."""
    import sqlite3
    import time
    deadline = time.monotonic() + timeout
    while True:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            left = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables if t in present}
        finally:
            db.close()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def scaled(n, sanitized):
    """n in the release build; `sanitized` (smaller, still past the bound the
    test is about) under a sanitizer, whose server runs several times slower."""
    return sanitized if SANITIZED else n


# -- every test fails loudly rather than skipping ------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"integration tests must not skip: {report.longrepr}"
    servers = getattr(item, "_parley_servers", [])
    if report.failed:
        for server in servers:
            report.sections.append((f"parleyd log ({server.name}, {server.log_path})",
                                    server.log()[-200_000:]))
        for client in getattr(item, "_gloox_clients", []):
            report.sections.append((f"gloox client {client.name}", client.transcript()))


@pytest.fixture(scope="session")
def binaries():
    """Paths of the binaries under test; errors (not skips) when missing."""
    try:
        return {"parleyd": required_binary("PARLEYD"), "parleyctl": required_binary("PARLEYCTL")}
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def gloox_binary():
    try:
        return required_binary("GLOOX_CLIENT")
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


# -- PostgreSQL ------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL for the whole pytest run (started at the first test that
    asks for it, stopped by PID at the end): a PostgresServer."""
    pg = PostgresServer()
    try:
        pg.start()
    except Exception:
        pg.destroy()
        raise
    yield pg
    pg.destroy()


@pytest.fixture
def pg_storage(postgres):
    """The storage: config of a parleyd on a fresh database of that
    PostgreSQL (ParleyServer(storage=...))."""
    return {"type": "postgresql", "url": postgres.create_database(), "max_connections": 4}


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_backend(request):
    """Parametrizes a test over both backends: the storage: keys to give
    server_factory (storage=...)."""
    if request.param == "sqlite":
        return {}
    return request.getfixturevalue("pg_storage")


# -- servers ---------------------------------------------------------------------

@pytest.fixture
def server_factory(request, tmp_path, binaries):
    """make(name=..., limits={...}, ...) -> a started ParleyServer.

    Every server is stopped at teardown with SIGTERM and must exit 0 within
    the timeout, without sanitizer reports.
    """
    servers = []
    request.node._parley_servers = servers

    def make(start=True, **kwargs):
        kwargs.setdefault("name", f"parley{len(servers)}")
        server = ParleyServer(tmp_path, binaries["parleyd"], binaries["parleyctl"], **kwargs)
        servers.append(server)
        if start:
            server.start()
        return server

    yield make

    problems = []
    for server in servers:
        was_running = server.proc is not None
        code, killed = server.stop()
        if killed:
            problems.append(f"{server.name}: did not exit within 15 s of SIGTERM (SIGKILLed)")
        elif getattr(server, "expected_exit", None) is not None:
            if code != server.expected_exit:
                problems.append(f"{server.name}: exited with {code}, expected {server.expected_exit}")
        elif was_running and code != 0:
            problems.append(f"{server.name}: exited with {code} after SIGTERM")
        elif not was_running and code not in (None, 0):
            problems.append(f"{server.name}: had exited with {code}")
        reports = server.sanitizer_reports()
        if reports:
            problems.append(f"{server.name}: sanitizer reports:\n" + "\n".join(reports[:20]))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def server(server_factory):
    """A started parleyd with the default test config."""
    return server_factory()


@pytest.fixture
def accounts(server):
    """alice, bob and carol registered on the default server: name -> bare JID."""
    return {name: server.register(name, PASSWORD) for name in ("alice", "bob", "carol")}


# -- clients ---------------------------------------------------------------------

@pytest.fixture
def raw_factory(request):
    """make(port, **kw) -> RawClient; every one is closed at teardown."""
    clients = []

    def make(port, **kwargs):
        client = RawClient(port, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.abort()


@pytest.fixture
def raw_login(server, accounts, raw_factory):
    """login(user, resource=None, **kw) -> a bound RawClient on the STARTTLS port."""
    def login(user, resource=None, presence=False, **kwargs):
        client = raw_factory(server.c2s_port)
        client.login(user, PASSWORD, resource=resource, presence=presence, **kwargs)
        return client
    return login


@pytest.fixture
def gloox_factory(request, gloox_binary):
    """make(server, user, resource, *args, mech=..., ...) -> a running GlooxClient.

    mech defaults to PLAIN (over STARTTLS) so that routing tests do not hinge
    on channel binding; the SASL tests choose their mechanism explicitly.
    mech=None lets gloox choose (it prefers SCRAM-SHA-1-PLUS).
    """
    clients = []
    request.node._gloox_clients = clients

    def make(server, user, resource="gloox", *extra_args, password=PASSWORD, port=None,
             mech="plain", commands=None, env=None):
        jid = f"{user}@{server.domain}/{resource}"
        args = list(extra_args)
        if mech is not None:
            args += ["--mech", mech]
        client = GlooxClient(gloox_binary, jid, password, port or server.c2s_port,
                             extra_args=args, commands=commands, env=env)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.kill()
