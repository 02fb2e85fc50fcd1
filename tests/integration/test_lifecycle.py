"""The daemon's life: reload (SIGHUP and `porter reload`) under load, SIGTERM under load,
dropping root for [server] user, and the systemd unit in etc/.

Clients are Python's smtplib on porter's relay listener from 127.0.0.1 (trusted), each
keeping its session open for several messages; logins are tested on the submission
listener (STARTTLS + AUTH). Delivery is off: every accepted message stays in the queue,
where `porter queue list --json` finds it.
"""

import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import stat
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from delivery_support import wait_until
from porter_fixture import (REPO_ROOT, PorterServer, PorterTestCase, client_tls_context,
                            make_message, password_hash, porter_bin)

PASSWORDS = {"alice": "alice-Life-Pw-1", "bob": "bob-Life-Pw-2"}


def can_login(server, user):
    """True if `user` logs in on the submission port (STARTTLS, then AUTH)."""
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=15) as s:
        s.starttls(context=client_tls_context())
        try:
            s.login(user, PASSWORDS[user])
            return True
        except smtplib.SMTPAuthenticationError:
            return False


class Sender(threading.Thread):
    """One client: `sessions` SMTP sessions of `per_session` messages each, `pause` seconds
    apart (0 sessions: until the server stops answering). Records the queue ID of every 250
    and every other outcome."""

    def __init__(self, server, token, per_session, pause, sessions=0):
        super().__init__(daemon=True)
        self.server = server
        self.token = token
        self.per_session = per_session
        self.pause = pause
        self.sessions = sessions
        self.ids = []
        self.refused = []  # (code, reply) of every non-250 answer
        self.errors = []   # exceptions (connection dropped, refused, ...)
        self.stop = threading.Event()

    def run(self):
        n = 0
        while not self.stop.is_set() and (self.sessions == 0 or n < self.sessions):
            n += 1
            try:
                with smtplib.SMTP("127.0.0.1", self.server.port("relay"),
                                  local_hostname="load.test", timeout=20) as s:
                    for i in range(self.per_session):
                        sender = "%s-%d-%d@load.example" % (self.token, n, i)
                        msg = make_message("%s-%d-%d" % (self.token, n, i), sender=sender)
                        s.ehlo_or_helo_if_needed()
                        code, resp = s.mail(sender)
                        if code == 250:
                            code, resp = s.rcpt("rcpt@remote.example")
                        if code == 250:
                            code, resp = s.data(msg)
                        if code != 250:
                            self.refused.append((code, resp))
                            return
                        m = re.search(rb"queued as ([0-9A-Z]{16})", resp)
                        self.ids.append(m.group(1).decode() if m else resp)
                        time.sleep(self.pause)
            except (OSError, smtplib.SMTPException) as e:
                self.errors.append(e)
                return


def queued_ids(server, cli=True):
    """IDs in the queue, by `porter queue list --json`, or by the API itself (curl) when the
    config file is not one the CLI can read."""
    if cli:
        out = server.cli_json("queue", "list", "--limit", "100000")
    else:
        status, body = server.api("GET", "/v1/queue?limit=100000")
        assert status == 200, body
        out = json.loads(body)
    return {m["id"] for m in out["messages"]}


class ReloadTest(PorterTestCase):
    def setUp(self):
        self.server = PorterServer("reload", roles=("relay", "submission"),
                                   users=[("alice", PASSWORDS["alice"], ["alice@local.test"])])
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def test_reload_under_load_keeps_sessions_and_applies_config(self):
        server = self.server
        self.assertTrue(can_login(server, "alice"))
        self.assertFalse(can_login(server, "bob"))
        token = uuid.uuid4().hex[:10]
        senders = [Sender(server, "%s%d" % (token, i), per_session=8, pause=0.25, sessions=1)
                   for i in range(3)]
        for s in senders:
            s.start()
        time.sleep(0.5)
        # bob is added while the sessions are open, then the config is reloaded twice.
        server.users.append(("bob", password_hash(PASSWORDS["bob"]), ["bob@local.test"]))
        server.write_config()
        server.proc.send_signal(signal.SIGHUP)
        self.assertTrue(server.wait_for_log(r" reloaded config=", timeout=5), "no reload")
        time.sleep(0.4)
        r = server.cli("reload")
        self.assertEqual(r.stdout.decode().strip(), "reloaded")
        for s in senders:
            s.join(30)
            self.assertFalse(s.is_alive())
        for s in senders:
            self.assertEqual((s.errors, s.refused), ([], []), "a session suffered the reload")
            self.assertEqual(len(s.ids), 8)
        self.assertEqual(len(re.findall(r" reloaded config=", server.log_text())), 2)
        self.assertLessEqual({i for s in senders for i in s.ids}, queued_ids(server))
        self.assertTrue(can_login(server, "bob"), "a user added to the config cannot log in "
                        "after reload")
        self.assertTrue(can_login(server, "alice"))

    def test_broken_config_is_refused_and_the_old_one_kept(self):
        server = self.server
        with open(server.config_path) as f:
            good = f.read()
        with open(server.config_path, "w") as f:
            f.write(good + ("" if good.endswith("\n") else "\n") + "[limits\nmax_errors = 3\n")
        bad_line = len(good.splitlines()) + 1
        where = "%s:%d:" % (server.config_path, bad_line)
        r = server.cli("reload", check=False)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 1, err)
        self.assertIn(where, err)
        # The daemon's own answer (the CLI reads the file too, and may refuse it first).
        status, body = server.api("POST", "/v1/reload")
        self.assertEqual(status, 422, body)
        self.assertIn(where, json.loads(body)["error"])
        # SIGHUP with the same file: refused and logged; the daemon lives on.
        server.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: len(re.findall(
            r" reload-refused .*%s" % re.escape(where), server.log_text())) == 2, 5),
            "SIGHUP: no reload-refused line")
        time.sleep(0.2)
        self.assertTrue(server.alive())
        self.assertNotRegex(server.log_text(), r" reloaded config=")
        # Still accepting mail and logins, with the old config.
        s = Sender(server, uuid.uuid4().hex[:10], per_session=2, pause=0, sessions=1)
        s.run()
        self.assertEqual((s.errors, s.refused, len(s.ids)), ([], [], 2))
        self.assertLessEqual(set(s.ids), queued_ids(server, cli=False))
        self.assertTrue(can_login(server, "alice"))
        status, body = server.api("GET", "/v1/status")
        self.assertEqual((status, json.loads(body)["pid"]), (200, server.proc.pid))


class SigtermTest(PorterTestCase):
    GRACE_S = 3

    def test_sigterm_under_load_loses_nothing_accepted(self):
        server = PorterServer("sigterm", roles=("relay",), tls=False,
                              settings={"server": {"shutdown_grace_s": self.GRACE_S}})
        self.addCleanup(server.cleanup)
        server.start()
        token = uuid.uuid4().hex[:10]
        senders = [Sender(server, "%s%d" % (token, i), per_session=5, pause=0.02)
                   for i in range(4)]
        for s in senders:
            s.start()
        self.assertTrue(wait_until(lambda: sum(len(s.ids) for s in senders) >= 20, 10),
                        "the clients got too few messages through")
        proc = server.proc
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(self.GRACE_S + 10)
        took = time.monotonic() - t0
        for s in senders:
            s.stop.set()
            s.join(20)
        self.assertEqual(rc, 0)
        self.assertLess(took, self.GRACE_S + 3, "shutdown took longer than the grace time")
        log = server.log_text()
        self.assertRegex(log, r" stopping signal=Terminated grace_s=%d " % self.GRACE_S)
        self.assertRegex(log, r" stopped sessions_cut=\d+ ")
        server._reap()

        accepted = [qid for s in senders for qid in s.ids]
        self.assertGreaterEqual(len(accepted), 20)
        self.assertEqual(len(set(accepted)), len(accepted))
        # Every client ended by the shutdown, not by a refusal while the daemon ran.
        for s in senders:
            self.assertTrue(s.errors or s.refused, "a client was never stopped")
            for code, resp in s.refused:
                self.assertEqual(code, 421, resp)

        server.start()  # delivery is off ([delivery] enabled = false): all of it waits
        missing = set(accepted) - queued_ids(server)
        self.assertEqual(missing, set(), "messages answered 250 are gone after SIGTERM")


class PrivilegesTest(PorterTestCase):
    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_runs_as_nobody_after_binding(self):
        nobody = pwd.getpwnam("nobody")
        server = PorterServer("privileges", roles=("relay",), tls=False,
                              settings={"server": {"user": "nobody"}})
        self.addCleanup(server.cleanup)
        # nobody must reach data_dir: the temp dir's parents are traversable (0755, /tmp).
        os.chmod(server.dir, 0o755)
        path = server.dir
        while path != "/":
            path = os.path.dirname(path)
            self.assertTrue(os.stat(path).st_mode & stat.S_IXOTH, path)
        server.start()
        with open("/proc/%d/status" % server.proc.pid) as f:
            status = f.read()
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", status, re.M).groups()
        gids = re.search(r"^Gid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", status, re.M).groups()
        self.assertEqual(set(map(int, uids)), {nobody.pw_uid}, status)
        self.assertEqual(set(map(int, gids)), {nobody.pw_gid}, status)
        self.assertRegex(status, r"(?m)^Groups:\s*$")
        self.assertEqual(os.stat(server.data_dir).st_uid, nobody.pw_uid)
        for root, dirs, files in os.walk(server.data_dir):
            for name in dirs + files:
                self.assertEqual(os.lstat(os.path.join(root, name)).st_uid, nobody.pw_uid, name)

        s = Sender(server, uuid.uuid4().hex[:10], per_session=3, pause=0, sessions=1)
        s.run()
        self.assertEqual((s.errors, s.refused, len(s.ids)), ([], [], 3))
        self.assertTrue(set(s.ids) <= queued_ids(server))
        self.assertEqual(server.stop(), 0)


class SystemdUnitTest(PorterTestCase):
    @unittest.skipUnless(shutil.which("systemd-analyze"), "no systemd-analyze")
    def test_unit_verifies(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(REPO_ROOT, "etc", "porter.service")) as f:
                text = f.read()
            self.assertIn("ExecStart=/usr/local/bin/porter serve", text)
            self.assertIn("ExecStartPre=/usr/local/bin/porter check-config", text)
            unit = os.path.join(tmp, "porter.service")
            with open(unit, "w") as f:
                f.write(text.replace("/usr/local/bin/porter", porter_bin()))
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit],
                               capture_output=True, timeout=60)
            out = (r.stdout + r.stderr).decode()
            self.assertEqual(r.returncode, 0, out)
            # Directives it does not understand are only warnings: there must be none.
            self.assertNotIn("porter.service", out)
            # Its stop timeout outlasts the default shutdown grace (30 s).
            m = re.search(r"^TimeoutStopSec=(\d+)$", text, re.M)
            self.assertTrue(m and int(m.group(1)) > 30, text)
            self.assertRegex(text, r"(?m)^ExecReload=/bin/kill -HUP \$MAINPID$")


if __name__ == "__main__":
    unittest.main()
