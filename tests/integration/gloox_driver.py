"""Drives parley_gloox_client processes: write commands, read event lines.

The client prints one event per line (CONNECTED, MSG, PING, DISCO-FEATURE,
DISCONNECTED, ...) and exits with a code that says how it ended:
0 ok, 1 usage, 2 connection failure, 3 auth failure, 4 timeout,
5 session lost after login, 6 no allowed SASL mechanism offered,
7 registration refused (--register).
"""

import os
import queue
import subprocess
import threading
import time

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_CONNECTION = 2
EXIT_AUTH = 3
EXIT_TIMEOUT = 4
EXIT_LOST = 5
EXIT_NO_MECHANISM = 6
EXIT_REGISTRATION = 7


# Free-text fields: always printed last, they run to the end of the line.
TAIL_FIELDS = ("body", "status", "text", "name")


def parse_event(line):
    """'MSG from=a to=b type=chat body=hi there' -> ('MSG', {...})."""
    kind, _, rest = line.partition(" ")
    fields = {}
    while rest:
        key, sep, value = rest.partition("=")
        if not sep:
            break
        if key in TAIL_FIELDS:
            fields[key] = value
            break
        value, _, rest = value.partition(" ")
        fields[key] = value
    return kind, fields


class GlooxClient:
    def __init__(self, binary, jid, password, port, extra_args=(), commands=None,
                 env=None, name=None):
        self.jid = jid
        self.name = name or jid
        args = [binary, "--jid", jid, "--password", password, "--port", str(port),
                *extra_args]
        for command in commands or ():
            args += ["--cmd", command]
        self.args = args
        env = dict(os.environ if env is None else env)
        # In a PARLEY_SANITIZE build this client is instrumented too, but gloox
        # and GnuTLS are not: their exit-time allocations are not ours to judge.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, env=env)
        self.lines = []
        self.stderr_lines = []
        self._events = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()
        self._cursor = 0  # lines before this index were consumed by wait_for

    def _read_stdout(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._events.put(line)
        self._events.put(None)

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip("\n"))

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, prefix, timeout=15.0, **fields):
        """The next line (after the last one matched) starting with `prefix`
        whose fields equal `fields`; raises AssertionError on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.lines):
                line = self.lines[self._cursor]
                self._cursor += 1
                kind, got = parse_event(line)
                if line.startswith(prefix) and all(got.get(k.replace("_", "-")) == v
                                                   for k, v in fields.items()):
                    return got
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: no '{prefix}' {fields} within {timeout}s; output:\n"
                    + self.transcript())
            try:
                item = self._events.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if item is None and self._cursor >= len(self.lines):
                self.proc.wait(timeout=5)
                raise AssertionError(
                    f"{self.name}: exited ({self.proc.returncode}) before '{prefix}' {fields};"
                    f" output:\n" + self.transcript())

    def wait_line(self, prefix, timeout=15.0):
        """The next raw line starting with `prefix` (for IN lines, whose XML
        does not split into fields)."""
        deadline = time.monotonic() + timeout
        while True:
            while self._cursor < len(self.lines):
                line = self.lines[self._cursor]
                self._cursor += 1
                if line.startswith(prefix):
                    return line
            if time.monotonic() > deadline or (self.proc.poll() is not None and self._events.empty()
                                               and self._cursor >= len(self.lines)):
                raise AssertionError(f"{self.name}: no '{prefix}' line within {timeout}s; output:\n"
                                     + self.transcript())
            try:
                self._events.get(timeout=0.2)
            except queue.Empty:
                pass

    def connected(self, timeout=30.0):
        return self.wait_for("CONNECTED", timeout)

    def messages(self):
        return [parse_event(l)[1] for l in self.lines if l.startswith("MSG ")]

    def wait_exit(self, timeout=30.0):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name}: still running after {timeout}s; output:\n"
                                 + self.transcript())

    def quit(self, timeout=15.0):
        """Sends quit and returns the exit code."""
        if self.proc.poll() is None:
            try:
                self.cmd("quit")
            except (BrokenPipeError, OSError):
                pass
        return self.wait_exit(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def transcript(self):
        out = "\n".join(f"  | {l}" for l in self.lines)
        if self.stderr_lines:
            out += "\n  stderr:\n" + "\n".join(f"  ! {l}" for l in self.stderr_lines[-50:])
        return out
