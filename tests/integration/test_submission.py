"""Submission (587, STARTTLS + AUTH) and submissions (465, implicit TLS + AUTH) with real
clients: swaks, curl and Python's smtplib. Every accepted message is looked up in the queue
(list, show, cat): envelope, the client's bytes intact at the end of the stored message,
Porter's Received in front, Message-ID and Date added only when missing. Then the
refusals: AUTH before TLS, MAIL before AUTH, wrong passwords and the lockout, a sender or
From header the user does not own."""

import base64
import os
import re
import smtplib
import subprocess
import unittest
import uuid

from porter_fixture import (PorterServer, PorterTestCase, SmtpClient, client_tls_context,
                            header_names, make_message, queued_id, split_prefix)

ALICE_PW = "alice-Secret-1"
APP_PW = "app-Secret-2"
MAX_FAILURES = 3


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


class SubmissionTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = PorterServer(
            "submission", roles=("submission", "submissions", "relay"),
            settings={"auth": {"max_failures": MAX_FAILURES, "failure_window": 60,
                               "lockout": 60, "max_delay_ms": 50}},
            users=[("alice", ALICE_PW, ["alice@example.com"]),
                   ("app", APP_PW, ["@app.example"])])
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.token = uuid.uuid4().hex

    # --- helpers ----------------------------------------------------------------------------

    def tmp_file(self, data):
        path = os.path.join(self.server.dir, "msg-%s.eml" % self.token)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def assert_queued(self, qid, sender, rcpts, client_bytes, *, adds_id_and_date,
                      proto="ESMTPSA"):
        """The message `qid` is queued with this envelope, ends with exactly the client's
        bytes, and Porter's prefix holds Received (+ Message-ID/Date when they were missing)."""
        entry = self.server.queue_entry(qid)
        self.assertEqual(entry.sender, sender)
        self.assertEqual(sorted(entry.recipients), sorted(rcpts))
        self.assertEqual(entry.state, "active")

        shown = self.server.queue_show(qid)
        self.assertEqual(shown["id"], qid)
        self.assertEqual(shown["from"], sender)
        self.assertEqual(sorted(a for a, _ in shown["to"]), sorted(rcpts))
        self.assertIn("Subject: test %s" % self.token, shown["headers"])
        self.assertIn("Received: ", shown["headers"])

        stored = self.server.queue_cat(qid)
        prefix = split_prefix(stored, client_bytes)
        names = header_names(prefix)
        self.assertEqual(names[0], "received", prefix)
        unfolded = re.sub(rb"\r\n[ \t]+", b" ", prefix)
        self.assertIn(("with %s id %s" % (proto, qid)).encode(), unfolded)
        if adds_id_and_date:
            self.assertEqual(sorted(names), ["date", "message-id", "received"], prefix)
            self.assertIn(("Message-ID: <%s@mx.porter.test>\r\n" % qid).encode(), prefix)
            self.assertRegex(prefix.decode(), r"Date: \w{3}, \d{1,2} \w{3} \d{4} "
                                              r"\d\d:\d\d:\d\d \+0000\r\n")
        else:
            self.assertEqual(names, ["received"], prefix)
        # exactly one of each in the whole message header
        header = stored.split(b"\r\n\r\n", 1)[0]
        all_names = header_names(header + b"\r\n")
        self.assertEqual(all_names.count("message-id"), 1, header)
        self.assertEqual(all_names.count("date"), 1, header)
        return stored

    def swaks(self, port, data, *extra):
        path = self.tmp_file(data[:-2])  # swaks appends the final CRLF itself
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(port),
                            "--helo", "swaks.client.test", "--data", "@" + path,
                            "--timeout", "20"] + list(extra),
                           capture_output=True, timeout=60)
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, out + r.stderr.decode("utf-8", "replace"))
        return out

    def curl(self, url, data, sender, rcpts, user):
        path = self.tmp_file(data)
        args = ["curl", "-sS", "-v", "--max-time", "30", "--url", url, "-k", "--user", user,
                "--mail-from", sender, "--upload-file", path]
        if url.startswith("smtp://"):
            args.append("--ssl-reqd")
        for r in rcpts:
            args += ["--mail-rcpt", r]
        r = subprocess.run(args, capture_output=True, timeout=60)
        err = r.stderr.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, err)
        return err

    def tls_session(self, user=None, password=None, source="127.0.0.1"):
        c = SmtpClient(self.server.port("submission"), source=source)
        c.expect(220)
        c.ehlo()
        c.starttls()
        c.ehlo()
        if user:
            c.expect_cmd("AUTH PLAIN " + plain(user, password), 235, "2.7.0")
        return c

    # --- real clients -----------------------------------------------------------------------

    def test_swaks_starttls_auth_plain(self):
        msg = make_message(self.token, sender="alice@example.com")
        out = self.swaks(self.server.port("submission"), msg, "--tls", "--auth", "PLAIN",
                         "--auth-user", "alice", "--auth-password", ALICE_PW,
                         "--from", "alice@example.com", "--to", "bob@remote.example")
        self.assertIn("AUTH PLAIN", out)
        self.assertRegex(out, r"<~  235 2\.7\.0")
        self.assert_queued(queued_id(out), "alice@example.com", ["bob@remote.example"], msg,
                           adds_id_and_date=True)

    def test_swaks_starttls_auth_login_keeps_message_id_and_date(self):
        msg = make_message(self.token, sender="Alice <alice@example.com>",
                           extra_headers=["Date: Mon, 01 Jan 2024 10:00:00 +0100",
                                          "Message-ID: <%s@client.example>" % self.token])
        out = self.swaks(self.server.port("submission"), msg, "--tls", "--auth", "LOGIN",
                         "--auth-user", "alice", "--auth-password", ALICE_PW,
                         "--from", "alice@example.com",
                         "--to", "bob@remote.example,carol@local.test")
        self.assertIn("AUTH LOGIN", out)
        stored = self.assert_queued(queued_id(out), "alice@example.com",
                                    ["bob@remote.example", "carol@local.test"], msg,
                                    adds_id_and_date=False)
        self.assertIn(b"\r\nMessage-ID: <%s@client.example>\r\n" % self.token.encode(), stored)
        self.assertIn(b"\r\nDate: Mon, 01 Jan 2024 10:00:00 +0100\r\n", stored)

    def test_swaks_implicit_tls_submissions(self):
        msg = make_message(self.token, sender="billing@app.example")
        out = self.swaks(self.server.port("submissions"), msg, "--tls-on-connect",
                         "--auth", "PLAIN", "--auth-user", "app", "--auth-password", APP_PW,
                         "--from", "billing@app.example", "--to", "customer@remote.example")
        self.assert_queued(queued_id(out), "billing@app.example", ["customer@remote.example"],
                           msg, adds_id_and_date=True)

    def test_smtplib_starttls_login_with_dot_lines(self):
        msg = make_message(self.token, sender="alice@example.com")
        msg += b".leading dot line\r\n..two dots\r\n.\r\nlast line\r\n"
        with smtplib.SMTP("127.0.0.1", self.server.port("submission"),
                          local_hostname="smtplib.client.test", timeout=30) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("starttls"))
            self.assertFalse(s.has_extn("auth"), "AUTH offered before TLS")
            s.starttls(context=client_tls_context())
            s.ehlo()
            self.assertEqual(s.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])
            self.assertFalse(s.has_extn("starttls"))
            for extension in ("pipelining", "size", "8bitmime", "smtputf8",
                              "enhancedstatuscodes", "chunking", "dsn"):
                self.assertTrue(s.has_extn(extension), extension)
            s.login("alice", ALICE_PW)
            self.assertEqual(s.mail("alice@example.com")[0], 250)
            self.assertEqual(s.rcpt("x@remote.example")[0], 250)
            code, resp = s.data(msg)
            self.assertEqual(code, 250, resp)
        self.assert_queued(queued_id(resp.decode()), "alice@example.com", ["x@remote.example"],
                           msg, adds_id_and_date=True)

    def test_curl_smtp_starttls(self):
        msg = make_message(self.token, sender="alice@example.com")
        err = self.curl("smtp://127.0.0.1:%d/curl.client.test" % self.server.port("submission"),
                        msg, "alice@example.com", ["one@remote.example", "two@remote.example"],
                        "alice:" + ALICE_PW)
        self.assertIn("STARTTLS", err)
        self.assert_queued(queued_id(err), "alice@example.com",
                           ["one@remote.example", "two@remote.example"], msg,
                           adds_id_and_date=True)

    def test_curl_smtps(self):
        msg = make_message(self.token, sender="alice@example.com",
                           extra_headers=["Message-ID: <%s@curl.example>" % self.token,
                                          "Date: Tue, 02 Jan 2024 10:00:00 +0000"])
        err = self.curl("smtps://127.0.0.1:%d/curl.client.test" % self.server.port("submissions"),
                        msg, "alice@example.com", ["one@remote.example"], "alice:" + ALICE_PW)
        self.assert_queued(queued_id(err), "alice@example.com", ["one@remote.example"], msg,
                           adds_id_and_date=False)

    # --- refusals ---------------------------------------------------------------------------

    def test_auth_not_offered_and_refused_before_starttls(self):
        with SmtpClient(self.server.port("submission")) as c:
            c.expect(220)
            ehlo = "\n".join(c.ehlo())
            self.assertIn("STARTTLS", ehlo)
            self.assertNotIn("AUTH", ehlo)
            c.expect_cmd("AUTH PLAIN " + plain("alice", ALICE_PW), 538, "5.7.11")
            c.expect_cmd("AUTH LOGIN", 538, "5.7.11")
            c.expect_cmd("MAIL FROM:<alice@example.com>", 530, "5.7.0")
            # the session is still usable: TLS and AUTH then work
            c.starttls()
            ehlo = "\n".join(c.ehlo())
            self.assertIn("AUTH PLAIN LOGIN", ehlo)
            self.assertNotIn("STARTTLS", ehlo)
            c.expect_cmd("AUTH PLAIN " + plain("alice", ALICE_PW), 235, "2.7.0")

    def test_submissions_offers_auth_at_once(self):
        with SmtpClient(self.server.port("submissions"), implicit_tls=True) as c:
            c.expect(220)
            ehlo = "\n".join(c.ehlo())
            self.assertIn("AUTH PLAIN LOGIN", ehlo)
            self.assertNotIn("STARTTLS", ehlo)
            c.expect_cmd("STARTTLS", 503, "5.5.1")

    def test_mail_before_auth(self):
        with self.tls_session() as c:
            c.expect_cmd("MAIL FROM:<alice@example.com>", 530, "5.7.0 Authentication required")
            c.expect_cmd("RCPT TO:<x@remote.example>", 503, "5.5.1")
        with SmtpClient(self.server.port("submissions"), implicit_tls=True) as c:
            c.expect(220)
            c.ehlo()
            c.expect_cmd("MAIL FROM:<alice@example.com>", 530, "5.7.0")

    def test_wrong_password_then_lockout(self):
        # From its own address, so that the lockout cannot touch the other tests.
        source = "127.0.0.9"
        with self.tls_session(source=source) as c:
            for i in range(MAX_FAILURES):
                c.expect_cmd("AUTH PLAIN " + plain("alice", "wrong-%d" % i), 535, "5.7.8")
            c.expect_cmd("AUTH PLAIN " + plain("alice", ALICE_PW), 454, "4.7.0")
            # LOGIN with the right password: still locked out
            c.expect_cmd("AUTH LOGIN", 334)
            c.expect_cmd(base64.b64encode(b"alice").decode(), 334)
            c.expect_cmd(base64.b64encode(ALICE_PW.encode()).decode(), 454, "4.7.0")
            c.expect_cmd("MAIL FROM:<alice@example.com>", 530)
        # a new connection from the same address is still locked out, via LOGIN too
        with self.tls_session(source=source) as c:
            c.expect_cmd("AUTH PLAIN " + plain("alice", ALICE_PW), 454,
                         "Too many failed logins")
        self.assertTrue(self.server.wait_for_log(r"auth-locked .*client=%s" % re.escape(source)))
        # another address is not affected
        with self.tls_session("alice", ALICE_PW, source="127.0.0.10") as c:
            c.expect_cmd("MAIL FROM:<alice@example.com>", 250)

    def test_auth_login_wrong_password(self):
        with self.tls_session(source="127.0.0.11") as c:
            c.expect_cmd("AUTH LOGIN", 334, "VXNlcm5hbWU6")
            c.expect_cmd(base64.b64encode(b"alice").decode(), 334, "UGFzc3dvcmQ6")
            c.expect_cmd(base64.b64encode(b"not-her-password").decode(), 535, "5.7.8")
            c.expect_cmd("AUTH PLAIN " + plain("nobody", "x"), 535, "5.7.8")
            c.expect_cmd("AUTH LOGIN " + base64.b64encode(b"alice").decode(), 334)
            c.expect_cmd(base64.b64encode(ALICE_PW.encode()).decode(), 235, "2.7.0")

    def test_envelope_sender_not_owned(self):
        with self.tls_session("alice", ALICE_PW) as c:
            c.expect_cmd("MAIL FROM:<mallory@example.com>", 553, "5.7.1")
            c.expect_cmd("MAIL FROM:<billing@app.example>", 553, "5.7.1")
            c.expect_cmd("MAIL FROM:<ALICE@example.com>", 250)
        with self.tls_session("app", APP_PW) as c:
            c.expect_cmd("MAIL FROM:<alice@example.com>", 553, "5.7.1")
            c.expect_cmd("MAIL FROM:<anyone@app.example>", 250)

    def test_from_header_not_owned(self):
        refused_froms = [
            "The CEO <ceo@example.com>",
            "alice@example.com, ceo@example.com",
            "alice@example.com,\r\n ceo@example.com",  # folded
            '"alice@example.com" <ceo@example.com>',  # an owned address as display name
            "=?utf-8?q?alice=40example=2Ecom?= <ceo@example.com>",
            "alice@example.com\r\nFrom: ceo@example.com",  # a second From field
        ]
        with self.tls_session("alice", ALICE_PW) as c:
            for from_value in refused_froms:
                with self.subTest(from_value=from_value):
                    c.expect_cmd("MAIL FROM:<alice@example.com>", 250)
                    c.expect_cmd("RCPT TO:<x@remote.example>", 250)
                    c.expect_cmd("DATA", 354)
                    c.send(make_message(self.token, sender=from_value) + b".\r\n")
                    c.expect(553, "5.7.1")
            # the session goes on, and a From she owns (display name with a comma) passes
            c.expect_cmd("NOOP", 250)
            c.expect_cmd("MAIL FROM:<alice@example.com>", 250)
            c.expect_cmd("RCPT TO:<x@remote.example>", 250)
            c.expect_cmd("DATA", 354)
            ok_token = uuid.uuid4().hex
            c.send(make_message(ok_token, sender='"Doe, Alice" <alice@example.com>') + b".\r\n")
            lines = c.expect(250)
        self.assertEqual(self.server.messages_containing(self.token.encode()), [])
        self.assertEqual(self.server.messages_containing(ok_token.encode()), [queued_id(lines)])


if __name__ == "__main__":
    unittest.main()
