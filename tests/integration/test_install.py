"""Installing Parley as an operator does: `cmake --install` into a temporary
prefix, and the Debian package (`cpack -G DEB`) built from the same build
directory.

The installed parleyd runs with the installed configuration (only its ports
changed to free loopback ones: every path in it already points into the
prefix), the installed parleyctl administers it, and a client logs in; the
same again from the tree extracted from the .deb. The build directory is
$PARLEY_BUILD_DIR (set by ctest); everything it installs must have been built
(CI builds everything first).
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import PASSWORD
from parley_harness import ParleyServer, free_port
from rawxmpp import RawClient

VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


def build_dir():
    path = os.environ.get("PARLEY_BUILD_DIR")
    if not path or not (Path(path) / "cmake_install.cmake").is_file():
        pytest.fail("$PARLEY_BUILD_DIR must name a configured build directory (run through ctest)",
                    pytrace=False)
    return Path(path)


def source_dir():
    path = os.environ.get("PARLEY_SOURCE_DIR")
    if not path:
        pytest.fail("$PARLEY_SOURCE_DIR is not set (run through ctest)", pytrace=False)
    return Path(path)


def project_version():
    text = (source_dir() / "CMakeLists.txt").read_text()
    return re.search(r"project\(parley VERSION (\d+\.\d+\.\d+)", text).group(1)


def shipped_modules():
    text = (source_dir() / "modules" / "CMakeLists.txt").read_text()
    body = re.search(r"set\(PARLEY_SHIPPED_MODULES([^)]*)\)", text).group(1)
    names = body.split()
    assert "mod_roster" in names
    return names


def run(*args, **kwargs):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=kwargs.pop("timeout", 300), **kwargs)
    return result


def run_ok(*args, **kwargs):
    result = run(*args, **kwargs)
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    root = tmp_path_factory.mktemp("prefix")
    t0 = time.monotonic()
    run_ok("cmake", "--install", build_dir(), "--prefix", root)
    print(f"cmake --install: {time.monotonic() - t0:.1f} s")
    return root


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """The .deb, built by cpack from the build directory (its wall time is printed)."""
    out = tmp_path_factory.mktemp("deb")
    t0 = time.monotonic()
    run_ok("cpack", "-G", "DEB", "--config", build_dir() / "CPackConfig.cmake", "-B", out, timeout=600)
    print(f"cpack -G DEB: {time.monotonic() - t0:.1f} s")
    debs = list(out.glob("*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


class InstalledServer(ParleyServer):
    """A parleyd started from an install with the configuration found there.

    `text` is that configuration as written to `config_path`; only its ports
    are made free ones here. The process runs from `workdir`, which holds no
    conf/ or data/: every path it uses comes from the configuration."""

    def __init__(self, workdir, parleyd, parleyctl, config_path, data_dir, text):
        super().__init__(workdir, str(parleyd), str(parleyctl), name="installed")
        self.dir = Path(workdir)
        self.log_path = self.dir / "parleyd-installed.log"
        self.config_path = Path(config_path)
        self.data_dir = Path(data_dir)
        self.text = with_free_ports(text)
        self.config = yaml.safe_load(self.text)
        self.c2s_port = next(e["port"] for e in self.config["listen"]
                             if e.get("module") == "c2s" and not e.get("tls"))
        self.domain = self.config["hosts"][0]
        self.hosts = list(self.config["hosts"])

    def write_config(self):
        self.config_path.write_text(self.text)


def with_free_ports(text):
    """The configuration with each listener's port replaced by a free one."""
    return re.sub(r"(?m)^(\s*-\s*port:\s*)\d+", lambda m: m.group(1) + str(free_port()), text)


def login_and_ping(server, user):
    client = RawClient(server.c2s_port, domain=server.domain)
    try:
        jid = client.login(user, PASSWORD)
        assert jid.startswith(f"{user}@{server.domain}/")
        client.sync()
    finally:
        client.close()


def exercise(server, parleyctl, env=None):
    """Start, administer with parleyctl, log a client in, stop with parleyctl."""
    try:
        server.start()
        status = run_ok(parleyctl, "--config", server.config_path, "status")
        assert "parleyd is running" in status.stdout
        run_ok(parleyctl, "--config", server.config_path, "register", "alice", server.domain, PASSWORD)
        listed = run_ok(parleyctl, "--config", server.config_path, "list-users", server.domain)
        assert "alice" in listed.stdout.split()
        login_and_ping(server, "alice")
        modules = run_ok(parleyctl, "--config", server.config_path, "module", "list").stdout
        stopped = run(parleyctl, "--config", server.config_path, "stop")
        assert stopped.returncode == 0, stopped.stderr
        server.proc.wait(timeout=30)
        assert server.proc.returncode == 0, server.log()
        assert not server.sanitizer_reports(), server.log()
        return modules
    finally:
        server.stop()  # SIGTERM by PID if it still runs (a failure above)


# -- cmake --install ---------------------------------------------------------------

def test_install_puts_every_part_in_the_prefix(prefix):
    for rel in ["bin/parleyd", "bin/parleyctl"]:
        assert os.access(prefix / rel, os.X_OK), rel
    for module in shipped_modules():
        assert (prefix / "lib/parley/modules" / f"{module}.so").is_file(), module
    assert (prefix / "include/parley/module.h").is_file()
    assert (prefix / "include/parley/module.hpp").is_file()
    assert (prefix / "lib/cmake/Parley/ParleyConfig.cmake").is_file()
    assert (prefix / "etc/parley/parley.yml").is_file()
    assert (prefix / "lib/systemd/system/parley.service").is_file()
    assert (prefix / "var/lib/parley").is_dir()
    assert (prefix / "share/doc/parley/README.md").is_file()
    assert (prefix / "share/doc/parley/docs/operations.md").is_file()
    assert (prefix / "share/doc/parley/docs/plugins.md").is_file()


def test_installed_config_is_the_default_with_absolute_paths(prefix):
    text = (prefix / "etc/parley/parley.yml").read_text()
    config = yaml.safe_load(text)
    data = prefix / "var/lib/parley"
    assert config["data_dir"] == str(data)
    assert config["storage"]["path"] == str(data / "parley.db")
    assert config["control_socket"] == str(data / "parley.sock")
    assert config["module_paths"] == [str(prefix / "lib/parley/modules")]
    # Generated from conf/parley.yml, not a second copy: every setting of the
    # source that is not a path is there, in the same order.
    source = (source_dir() / "conf/parley.yml").read_text()
    path_keys = re.compile(r"^\s*(data_dir|path|control_socket|module_paths):")
    installed_lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    source_lines = [ln for ln in source.splitlines()
                    if ln.strip() and not ln.lstrip().startswith("#") and not path_keys.match(ln)]
    it = iter(installed_lines)
    for line in source_lines:
        assert any(line == candidate for candidate in it), f"missing or out of order: {line!r}"
    # Every path is explained: a comment on its line or on the line before.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if path_keys.match(line):
            assert "#" in line or lines[i - 1].lstrip().startswith("#"), line
    assert "relative to the directory parleyd is started from" in text  # why they are absolute


def test_installed_unit(prefix):
    unit = (prefix / "lib/systemd/system/parley.service").read_text()
    service = {}
    section = None
    for line in unit.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        if section == "[Service]":
            service.setdefault(key, []).append(value)
    conf = prefix / "etc/parley/parley.yml"
    assert service["ExecStart"] == [f"{prefix}/bin/parleyd --config {conf}"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["User"] == ["parley"]
    assert service["Restart"] == ["on-failure"]
    assert int(service["LimitNOFILE"][0]) >= 1_000_000
    assert service["NoNewPrivileges"] == ["true"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["ReadWritePaths"] == [str(prefix / "var/lib/parley")]
    assert service["PrivateTmp"] == ["true"]
    # The default listeners are all >= 1024: no capability at all.
    assert service["CapabilityBoundingSet"] == [""]
    assert "WantedBy=multi-user.target" in unit
    # systemd's own reading of it: every key known, the binaries there.
    path = prefix / "lib/systemd/system/parley.service"
    verified = run("systemd-analyze", "verify", path)
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr
    security = run("systemd-analyze", "security", "--offline=true", path)
    exposure = re.search(r"Overall exposure level for parley.service: ([0-9.]+)", security.stdout)
    assert exposure and float(exposure.group(1)) < 4.0, security.stdout[-2000:]


def test_versions(prefix):
    version = project_version()
    assert run_ok(prefix / "bin/parleyd", "--version").stdout.strip() == f"parleyd {version}"
    assert run_ok(prefix / "bin/parleyctl", "--version").stdout.strip() == f"parleyctl {version}"


def test_check_config(prefix, tmp_path):
    conf = prefix / "etc/parley/parley.yml"
    ok = run(prefix / "bin/parleyd", "--config", conf, "--check-config", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(conf.read_text().replace("loglevel: info", "loglevel: loud", 1))
    bad = run(prefix / "bin/parleyd", "--config", broken, "--check-config", cwd=tmp_path)
    assert bad.returncode != 0
    assert "broken.yml:" in bad.stderr and "loud" in bad.stderr
    missing = run(prefix / "bin/parleyd", "--config", tmp_path / "none.yml", "--check-config")
    assert missing.returncode != 0


def test_installed_server_runs_with_the_installed_config(prefix, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    conf = prefix / "etc/parley/parley.yml"
    server = InstalledServer(work, prefix / "bin/parleyd", prefix / "bin/parleyctl", conf,
                             prefix / "var/lib/parley", conf.read_text())
    try:
        server.start()
        # The installed parleyctl finds the installed configuration by itself
        # (no --config, started from a directory without conf/).
        status = run(prefix / "bin/parleyctl", "status", cwd=work)
        assert status.returncode == 0, status.stderr
        assert "parleyd is running" in status.stdout
    finally:
        server.stop()
    modules = exercise(server, prefix / "bin/parleyctl")
    for module in ["mod_roster", "mod_mam", "mod_offline"]:
        assert f"{prefix}/lib/parley/modules/{module}.so" in modules, modules
    data = prefix / "var/lib/parley"
    assert (data / "parley.db").is_file()
    assert (data / "certs" / "localhost.pem").is_file()
    assert not (work / "data").exists()


# -- the Debian package ------------------------------------------------------------

def test_deb_info(deb, tmp_path):
    info = run_ok("dpkg-deb", "--info", deb).stdout
    fields = dict(re.findall(r"(?m)^ (\S+): (.*)$", info))
    assert fields["Package"] == "parley"
    assert fields["Version"] == project_version()
    assert fields["Architecture"] == run_ok("dpkg", "--print-architecture").stdout.strip()
    depends = fields["Depends"]
    for dep in ["libuv1", "libssl3", "libsqlite3-0", "libexpat1", "libyaml-cpp", "libspdlog", "passwd"]:
        assert dep in depends, f"{dep} not in Depends: {depends}"
    control = tmp_path / "control"
    run_ok("dpkg-deb", "--control", deb, control)
    assert (control / "conffiles").read_text().split() == ["/etc/parley/parley.yml"]
    for script in ["postinst", "prerm", "postrm"]:
        assert os.access(control / script, os.X_OK), script
        run_ok("sh", "-n", control / script)
    postinst = (control / "postinst").read_text()
    assert "useradd --system" in postinst
    assert "chown parley:parley /var/lib/parley" in postinst
    assert "enable parley.service" in postinst
    # Enabled, never started by the package (only restarted on upgrade if it ran).
    assert not re.search(r"(?m)^\s*systemctl (start|restart) ", postinst)
    assert re.search(r"(?m)^\s*systemctl try-restart parley.service", postinst)


def test_deb_contents(deb):
    listing = run_ok("dpkg-deb", "--contents", deb).stdout
    paths = {line.split()[-1].rstrip("/") for line in listing.splitlines() if line.strip()}
    expected = {"./usr/bin/parleyd", "./usr/bin/parleyctl", "./etc/parley/parley.yml",
                "./usr/lib/systemd/system/parley.service", "./usr/include/parley/module.h",
                "./usr/lib/cmake/Parley/ParleyConfig.cmake", "./usr/share/doc/parley/README.md",
                "./usr/share/doc/parley/docs/operations.md", "./var/lib/parley"}
    expected |= {f"./usr/lib/parley/modules/{m}.so" for m in shipped_modules()}
    assert expected <= paths, sorted(expected - paths)
    assert not any(p.startswith(("./usr/etc", "./usr/var", "./tmp", "./work")) for p in paths), sorted(paths)


def test_deb_tree_runs(deb, tmp_path):
    root = tmp_path / "root"
    run_ok("dpkg-deb", "--extract", deb, root)
    conf = root / "etc/parley/parley.yml"
    text = conf.read_text()
    config = yaml.safe_load(text)
    assert config["data_dir"] == "/var/lib/parley"
    assert config["control_socket"] == "/var/lib/parley/parley.sock"
    assert config["module_paths"] == ["/usr/lib/parley/modules"]
    unit = (root / "usr/lib/systemd/system/parley.service").read_text()
    assert "ExecStart=/usr/bin/parleyd --config /etc/parley/parley.yml\n" in unit
    assert "ReadWritePaths=/var/lib/parley\n" in unit
    assert "StateDirectory=parley\n" in unit
    # Run it from the extracted tree: the package's paths moved under it.
    text = text.replace("/var/lib/parley", str(root / "var/lib/parley"))
    text = text.replace("/usr/lib/parley/modules", str(root / "usr/lib/parley/modules"))
    work = tmp_path / "work"
    work.mkdir()
    server = InstalledServer(work, root / "usr/bin/parleyd", root / "usr/bin/parleyctl", conf,
                             root / "var/lib/parley", text)
    modules = exercise(server, root / "usr/bin/parleyctl")
    assert f"{root}/usr/lib/parley/modules/mod_roster.so" in modules, modules
