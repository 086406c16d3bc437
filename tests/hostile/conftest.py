"""Fixtures for the hostile-client suite (tests/hostile).

The harness is tests/integration's, unchanged: its folder goes on sys.path and
its conftest is loaded under another module name, so its fixtures
(server_factory, raw_factory, gloox_factory, binaries, ...) and its report
hook (no skips; server logs and gloox transcripts on failure) apply here too.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"
for folder in (str(HERE), str(INTEGRATION)):
    if folder not in sys.path:
        sys.path.insert(0, folder)

_spec = importlib.util.spec_from_file_location("parley_integration_conftest",
                                               INTEGRATION / "conftest.py")
_integration = importlib.util.module_from_spec(_spec)
sys.modules["parley_integration_conftest"] = _integration
_spec.loader.exec_module(_integration)

# Re-exported: pytest finds fixtures and hooks among a conftest's attributes.
PASSWORD = _integration.PASSWORD
binaries = _integration.binaries
gloox_binary = _integration.gloox_binary
server_factory = _integration.server_factory
raw_factory = _integration.raw_factory
gloox_factory = _integration.gloox_factory
pytest_runtest_makereport = _integration.pytest_runtest_makereport

from hostile import Witness, raw_from  # noqa: E402  (needs the sys.path set above)

USERS = ("alice", "bob", "mallory", "eve")


@pytest.fixture
def hostile_server(server_factory):
    """make(**limits) -> a started parleyd with alice, bob (the witness pair),
    mallory and eve (attackers) registered."""
    def make(limits=None, **kwargs):
        server = server_factory(limits=limits or {}, **kwargs)
        for user in USERS:
            server.register(user, PASSWORD)
        return server
    return make


@pytest.fixture
def raw_from_factory():
    """make(source_ip, port, **kw) -> RawClient connected from source_ip
    (another 127.0.0.0/8 address); every one is closed at teardown."""
    clients = []

    def make(source_ip, port, **kwargs):
        client = raw_from(source_ip, port, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.abort()


@pytest.fixture
def witness(request, gloox_factory):
    """start(server) -> a running Witness: two gloox clients (alice and bob)
    exchanging numbered messages both ways while the test attacks the server.
    The test calls witness.verify() itself; teardown only stops the clients."""
    started = []

    def start(server, interval=0.05, **kwargs):
        w = Witness(server, gloox_factory, interval=interval,
                    tag=f"w{len(started)}{os.getpid() % 1000}", **kwargs)
        started.append(w)
        w.start()
        return w

    yield start
    for w in started:
        w.stop_sending()
