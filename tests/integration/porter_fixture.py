"""Shared fixture for Porter's integration tests: a real `porter serve` on loopback.

PorterServer writes a TOML config into its own temporary directory (the queue lives there
too), picks free loopback ports, starts the binary named by $PORTER_BIN with stderr captured
to a log file, waits for the "started" log line, and stops the process by its pid (SIGTERM,
then SIGKILL after a timeout). It also wraps the CLI verbs the tests check results with
(`porter queue list/show/cat`, `porter passwd`).

SmtpClient is a raw line-oriented SMTP client over a plain or TLS socket, for the tests that
must control every byte (smuggling, pipelining, garbage); the others use real clients
(swaks, curl, smtplib).

PorterTestCase prints the tail of every server log a failed test touched.

Tests must be independent: each server has its own directory and ports, because ctest runs
the test files in parallel.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def porter_bin():
    path = os.environ.get("PORTER_BIN") or os.path.join(REPO_ROOT, "build", "mta", "porter")
    if not os.access(path, os.X_OK):
        raise RuntimeError("porter binary not found: set PORTER_BIN (tried %s)" % path)
    return path


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run_porter(args, stdin=None, cwd=None, timeout=60):
    """Runs a porter CLI verb; returns the CompletedProcess (bytes stdout/stderr)."""
    return subprocess.run([porter_bin()] + list(args), input=stdin, cwd=cwd,
                          capture_output=True, timeout=timeout)


_hash_cache = {}


def password_hash(password):
    """A crypt(3) hash of `password` made by `porter passwd` (password on stdin)."""
    if password not in _hash_cache:
        r = run_porter(["passwd"], stdin=(password + "\n").encode())
        if r.returncode != 0:
            raise RuntimeError("porter passwd failed: %r" % r.stderr)
        _hash_cache[password] = r.stdout.decode().strip()
    return _hash_cache[password]


_MAILROOM_HASH = []


def mailroom_hash():
    """The catch-all user's hash, made once per test process (nobody logs in as it)."""
    if not _MAILROOM_HASH:
        _MAILROOM_HASH.append(password_hash(uuid.uuid4().hex))
    return _MAILROOM_HASH[0]


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        # An inline table: a list of them is an array of tables ([[delivery.tls_policy]]).
        return "{" + ", ".join("%s = %s" % (k, toml_value(x)) for k, x in v.items()) + "}"
    raise TypeError("no TOML form for %r" % (v,))


class QueueEntry:
    """One line of `porter queue list`."""

    def __init__(self, qid, age, size, state, sender, recipients):
        self.id = qid
        self.age = age
        self.size = size
        self.state = state
        self.sender = sender
        self.recipients = recipients
        self.replies = {}  # recipient -> the last reply listed under the message (deferred)

    def __repr__(self):
        return "QueueEntry(%s %s <%s> -> %s)" % (self.id, self.state, self.sender, self.recipients)


_LIST_LINE = re.compile(r"^(\S{16})\s+(\S+)\s+(\d+)\s+(\S+)\s+<([^>]*)> ->(.*)$")
# Under a message, one indented line per pending recipient with a last reply.
_REPLY_LINE = re.compile(r"^\s+<([^>]*)>: (.*)$")


def parse_queue_list(text):
    lines = text.splitlines()
    if not lines or not lines[0].startswith("ID"):
        raise AssertionError("queue list has no header line:\n" + text)
    m = re.match(r"^(\d+) messages?$", lines[-1])
    if not m:
        raise AssertionError("queue list has no count line:\n" + text)
    entries = []
    for line in lines[1:-1]:
        rm = _REPLY_LINE.match(line)
        if rm and entries:
            entries[-1].replies[rm.group(1)] = rm.group(2)
            continue
        lm = _LIST_LINE.match(line)
        if not lm:
            raise AssertionError("cannot parse queue list line: %r" % line)
        entries.append(QueueEntry(lm.group(1), lm.group(2), int(lm.group(3)), lm.group(4),
                                  lm.group(5), re.findall(r"<([^>]*)>", lm.group(6))))
    if len(entries) != int(m.group(1)):
        raise AssertionError("queue list count %s but %d lines" % (m.group(1), len(entries)))
    return entries


def parse_queue_show(text):
    """`porter queue show ID` -> dict: id, state, size, from, to (list of (addr, state)),
    client (the line), headers (text after the blank line)."""
    head, _, headers = text.partition("\n\n")
    out = {"to": [], "headers": headers}
    for line in head.splitlines():
        key, _, value = line.partition(": ")
        if key == "to":
            m = re.match(r"^<([^>]*)>\s*(.*)$", value)
            out["to"].append((m.group(1), m.group(2)) if m else (value, ""))
        elif key == "from":
            out["from"] = value[1:-1] if value.startswith("<") else value
        else:
            out[key] = value
    return out


def split_prefix(stored, client_bytes):
    """Checks that `stored` ends with exactly `client_bytes` and returns what Porter put in
    front (its header lines); raises AssertionError otherwise."""
    if not stored.endswith(client_bytes):
        raise AssertionError(
            "stored message does not end with the client's bytes: stored %d bytes, client %d;"
            " stored tail %r, client tail %r"
            % (len(stored), len(client_bytes), stored[-120:], client_bytes[-120:]))
    return stored[:len(stored) - len(client_bytes)]


def header_names(prefix):
    """Names of the header fields in a block of header lines (continuations skipped)."""
    return [line.split(b":", 1)[0].decode().lower()
            for line in prefix.split(b"\r\n") if line and line[:1] not in (b" ", b"\t")]


class PorterServer:
    """A porter daemon with its own config, data dir and ports.

    roles: listener roles, each gets one port (port(role)).
    settings: {"section": {"key": value}} merged over the defaults below.
    users: [(name, password, [addresses])]; hashes come from `porter passwd`.
    """

    _all = []  # every server made, so a failing test can show their logs
    # The log line that says the daemon is up (a test with [log] format = "json" changes it).
    started_pattern = r" started "

    def __init__(self, name, roles=("submission", "submissions", "relay"), tls=True,
                 settings=None, users=()):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="porter-it-%s-" % name)
        self.data_dir = os.path.join(self.dir, "data")
        self.config_path = os.path.join(self.dir, "porter.toml")
        self.log_path = os.path.join(self.dir, "porter.log")
        self.roles = list(roles)
        self.tls = tls
        self.settings = {
            "server": {"hostname": "mx.porter.test", "data_dir": self.data_dir, "threads": 2},
            # Every address in local.test exists: unknown ones go to the mailroom user, so tests
            # about accepting mail may use any; tests of 550 5.1.1 set catch_all = "".
            "relay": {"trusted_networks": ["127.0.0.1/32"], "local_domains": ["local.test"],
                      "catch_all": "mailroom"},
            "auth": {"max_delay_ms": 50},
            # These tests are about accepting mail: the queue must keep what it accepted.
            "delivery": {"enabled": False},
            # Checks that look up DNS are off unless a test turns them on with its own
            # loopback DNS server: no test may query a resolver off loopback.
            "inbound": {"spf": "off", "dkim": False, "dmarc": "off"},
            "submission": {"dmarc_alignment": "off"},
        }
        if tls:
            self.settings["tls"] = {"cert": os.path.join(self.dir, "tls", "cert.pem"),
                                    "key": os.path.join(self.dir, "tls", "key.pem"),
                                    "self_signed": True}
        for section, values in (settings or {}).items():
            self.settings.setdefault(section, {}).update(values)
        self.users = [(n, password_hash(p), list(a)) for n, p, a in users]
        self.users.append(("mailroom", mailroom_hash(), ["mailroom@local.test"]))
        self.quota_mb = {}  # login -> [[user]] quota_mb
        self.ports = {}
        self.proc = None
        self._log_file = None
        self._log_offset = 0
        PorterServer._all.append(self)

    # --- configuration and process -------------------------------------------------------

    def write_config(self):
        out = []
        for section, values in self.settings.items():
            # A list of dicts is an array of tables ([[dkim]]), a dict one table.
            for table in (values if isinstance(values, list) else [values]):
                out.append(("[[%s]]" if isinstance(values, list) else "[%s]") % section)
                out += ["%s = %s" % (k, toml_value(v)) for k, v in table.items()]
                out.append("")
        for role in self.roles:
            out += ["[[listener]]", 'role = "%s"' % role, 'address = "127.0.0.1"',
                    "port = %d" % self.ports[role], ""]
        for name, pw_hash, addresses in self.users:
            out += ["[[user]]", "name = %s" % toml_value(name),
                    "password = %s" % toml_value(pw_hash),
                    "addresses = %s" % toml_value(addresses)]
            if name in self.quota_mb:
                out.append("quota_mb = %d" % self.quota_mb[name])
            out.append("")
        with open(self.config_path, "w") as f:
            f.write("\n".join(out))

    def port(self, role):
        return self.ports[role]

    def start(self, timeout=20):
        """Starts porter (new ports on the first start, the same ones on a restart)."""
        for attempt in range(3):
            if not self.ports or attempt > 0:
                self.ports = {role: free_port() for role in self.roles}
            self.write_config()
            if self._spawn(timeout):
                return self
            if "address already in use" not in self.log_text()[self._log_offset:].lower():
                break
        raise AssertionError("porter did not start; log:\n" + self.log_tail())

    def _spawn(self, timeout):
        self._log_file = open(self.log_path, "ab")
        self._log_offset = self._log_file.tell()
        self.proc = subprocess.Popen([porter_bin(), "serve"] + self.config_args(),
                                     stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=self._log_file, cwd=self.dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(self.started_pattern, self.log_text()[self._log_offset:]):
                return True
            if self.proc.poll() is not None:
                self._log_file.close()
                return False
            time.sleep(0.02)
        self.kill()
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self._reap()

    def kill(self):
        """SIGKILL at once (the crash test)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        return self._reap()

    def _reap(self):
        rc = self.proc.returncode
        self.proc = None
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        return rc

    def cleanup(self):
        self.stop()
        if not os.environ.get("PORTER_KEEP_TMP"):
            self.saved_log = self.log_text()
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- logs -----------------------------------------------------------------------------

    def log_text(self):
        if not os.path.exists(self.log_path):
            return getattr(self, "saved_log", "")
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern, timeout=5):
        """The first match of regex `pattern` in the log, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log_text())
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def wait_sessions_closed(self, timeout=5):
        """Waits until every session the log shows connecting has disconnected (so that
        connection slots are free again); returns False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            opened = set(re.findall(r" connect session=(\w+)", text))
            closed = set(re.findall(r" disconnect session=(\w+)", text))
            if opened <= closed:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    # --- the queue, through the CLI -------------------------------------------------------

    def config_args(self):
        return ["--config", self.config_path]

    def cli(self, *args, check=True):
        r = run_porter(list(args) + self.config_args(), cwd=self.dir)
        if check and r.returncode != 0:
            raise AssertionError("porter %s failed (%d): %s"
                                 % (" ".join(args), r.returncode, r.stderr.decode("utf-8", "replace")))
        return r

    def queue_list(self):
        return parse_queue_list(self.cli("queue", "list").stdout.decode())

    def queue_entry(self, qid):
        for e in self.queue_list():
            if e.id == qid:
                return e
        raise AssertionError("queue id %s not in `porter queue list`" % qid)

    def queue_show(self, qid):
        return parse_queue_show(self.cli("queue", "show", qid).stdout.decode("utf-8", "replace"))

    def queue_cat(self, qid):
        return self.cli("queue", "cat", qid).stdout

    def admin_socket(self):
        """The admin API's Unix socket (the default [admin] socket, in data_dir)."""
        return os.path.join(self.data_dir, "admin.sock")

    def api(self, method, path, token=None, tcp_port=None):
        """One raw admin API request with curl (over the Unix socket, or TCP on 127.0.0.1 when
        `tcp_port` is given); returns (HTTP status, body bytes)."""
        args = ["curl", "-sS", "--max-time", "30", "-X", method, "-o", "-",
                "-w", "\n%{http_code}"]
        if token is not None:
            args += ["-H", "Authorization: Bearer " + token]
        if tcp_port is None:
            args += ["--unix-socket", self.admin_socket(), "http://porter" + path]
        else:
            args += ["http://127.0.0.1:%d%s" % (tcp_port, path)]
        r = subprocess.run(args, capture_output=True, timeout=40)
        if r.returncode != 0:
            raise AssertionError("curl %s %s failed: %s" % (method, path, r.stderr.decode()))
        body, _, code = r.stdout.rpartition(b"\n")
        return int(code), body

    def cli_json(self, *args):
        """A CLI verb with --json, its output parsed."""
        return json.loads(self.cli(*(list(args) + ["--json"])).stdout)

    def messages_containing(self, needle):
        """IDs of queued messages whose stored bytes contain `needle` (bytes)."""
        return [e.id for e in self.queue_list() if needle in self.queue_cat(e.id)]


class EmbeddedDefaultPorter(PorterServer):
    """`porter serve` without --config, run in its own directory (./var lands there), on the
    development default's fixed ports."""

    PORTS = {"relay": 2525, "submission": 2587, "submissions": 2465}

    def __init__(self, name):
        super().__init__(name, roles=tuple(self.PORTS), tls=False)
        self.data_dir = os.path.join(self.dir, "var")

    def start(self, timeout=20):
        self.ports = dict(self.PORTS)
        if not self._spawn(timeout):
            raise AssertionError("porter did not start; log:\n" + self.log_tail())
        return self

    def config_args(self):
        return []


class PorterTestCase(unittest.TestCase):
    """Prints the log tails of all servers when a test fails."""

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for server in PorterServer._all:
                sys.stderr.write("\n----- porter log (%s, %s), last lines -----\n%s\n"
                                 % (server.name, server.dir, server.log_tail()))
        return outcome


# --- a raw SMTP client ----------------------------------------------------------------------

def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class SmtpClient:
    """Line-oriented SMTP over a socket. reply() returns (code, [lines]) of one reply,
    code None when the server closed the connection."""

    def __init__(self, port, source="127.0.0.1", implicit_tls=False, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        if implicit_tls:
            self.sock = client_tls_context().wrap_socket(self.sock)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def line(self):
        """One line without CRLF, or None at end of stream."""
        while b"\n" not in self.buf:
            if not self._fill():
                return None
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            line = self.line()
            if line is None:
                return None, lines
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                code = int(line[:3]) if line[:3].isdigit() else -1
                return code, lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def expect(self, code, text=None):
        got, lines = self.reply()
        if got != code or (text and text not in "\n".join(lines)):
            raise AssertionError("expected %s %s, got %s %r" % (code, text or "", got, lines))
        return lines

    def expect_cmd(self, command, code, text=None):
        self.send(command + "\r\n")
        return self.expect(code, text)

    def closed(self, timeout=5):
        """True if the server closes the connection (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return True
        except (socket.timeout, ssl.SSLError):
            return False

    def starttls(self):
        """STARTTLS + handshake (no EHLO afterwards)."""
        self.expect_cmd("STARTTLS", 220)
        if self.buf:
            raise AssertionError("bytes after the STARTTLS reply: %r" % self.buf)
        self.sock = client_tls_context().wrap_socket(self.sock)

    def ehlo(self, name="client.test"):
        return self.expect_cmd("EHLO " + name, 250)


def queued_id(lines):
    """The queue ID from a '250 2.0.0 Ok: queued as ID' reply (or reply text)."""
    text = lines if isinstance(lines, str) else "\n".join(lines)
    m = re.search(r"(?:250[ -])?2\.0\.0 Ok: queued as ([0-9A-Z]{16})", text)
    if not m:
        raise AssertionError("no 'queued as ID' in %r" % text)
    return m.group(1)


def make_message(token, body_lines=3, sender="sender@example.com", extra_headers=(),
                 to="rcpt@remote.example"):
    """A CRLF message (bytes) carrying `token` in the Subject and body."""
    headers = ["From: %s" % sender, "To: %s" % to, "Subject: test %s" % token]
    headers += list(extra_headers)
    body = ["line %d of %s" % (i, token) for i in range(body_lines)]
    return ("\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(body) + "\r\n").encode()
