"""The porter command line: check-config (the example file passes; bad files name file,
line and key), passwd (hashes that crypt(3) verifies), queue list/show, and `porter serve`
with no config file at all (the embedded development default)."""

import base64
import os
import re
import smtplib
import ssl
import subprocess
import tempfile
import unittest
import uuid
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

from porter_fixture import (REPO_ROOT, EmbeddedDefaultPorter, PorterServer, PorterTestCase,
                            SmtpClient, client_tls_context, make_message, queued_id, run_porter,
                            split_prefix)

LISTENER = '[[listener]]\nrole = "relay"\naddress = "127.0.0.1"\nport = 2500\n'

# (name, file text, line named in the error, text the error must contain)
BAD_CONFIGS = [
    ("unknown key", '[server]\nhostname = "a.example"\nhostnme = "b.example"\n' + LISTENER,
     3, "server.hostnme"),
    ("unknown table", LISTENER + '\n[srever]\nthreads = 1\n', 6, "srever"),
    ("string for integer", '[limits]\nmax_errors = "many"\n' + LISTENER, 2, "limits.max_errors"),
    ("integer out of range", LISTENER + '[limits]\n\nmax_recipients = 0\n', 7,
     "limits.max_recipients"),
    ("bad bool", '[tls]\nself_signed = "yes"\n' + LISTENER, 2, "tls.self_signed"),
    ("bad role", '[[listener]]\nrole = "mx"\naddress = "127.0.0.1"\nport = 25\n', 2,
     "listener[0].role"),
    ("bad address", LISTENER + '\n[[listener]]\nrole = "relay"\naddress = "localhost"\n'
     'port = 26\n', 8, "listener[1].address"),
    ("bad cidr", LISTENER + '[relay]\ntrusted_networks = ["10.0.0.0/33"]\n', 6,
     "relay.trusted_networks"),
    ("bad bare_lf", LISTENER + '[limits]\nbare_lf = "ignore"\n', 6, "limits.bare_lf"),
    ("plain password", LISTENER + '[[user]]\nname = "bob"\npassword = "secret"\n'
     'addresses = ["bob@example.com"]\n', 7, "user[0].password"),
    ("bad toml", '[server\nhostname = "a.example"\n' + LISTENER, 1, ""),
    ("bad toml value", LISTENER + '[limits]\nmax_errors = 12 13\n', 6, ""),
]


class CheckConfigTest(PorterTestCase):
    def test_example_config_is_valid(self):
        # check-config also loads the certificate and key the config names: the example's
        # live in /etc/porter, so the copy points at a pair made here.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-subj", "/CN=mail.example.com", "-days", "2", "-keyout", key,
                            "-out", cert], check=True, capture_output=True)
            with open(os.path.join(REPO_ROOT, "etc", "porter.toml")) as f:
                text = f.read()
            text = text.replace('"/etc/porter/tls/cert.pem"', '"%s"' % cert)
            text = text.replace('"/etc/porter/tls/key.pem"', '"%s"' % key)
            path = os.path.join(tmp, "porter.toml")
            with open(path, "w") as f:
                f.write(text)
            r = run_porter(["check-config", path])
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertIn("ok (7 listeners, 2 users", r.stdout.decode())
            # Without the pair it is refused, naming the file.
            r = run_porter(["check-config", os.path.join(REPO_ROOT, "etc", "porter.toml")])
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("/etc/porter/tls/cert.pem", r.stderr.decode())

    def test_bad_configs_name_file_line_and_key(self):
        with tempfile.TemporaryDirectory() as tmp:
            for name, text, line, key in BAD_CONFIGS:
                with self.subTest(name):
                    path = os.path.join(tmp, name.replace(" ", "-") + ".toml")
                    with open(path, "w") as f:
                        f.write(text)
                    r = run_porter(["check-config", path])
                    err = r.stderr.decode()
                    self.assertNotEqual(r.returncode, 0, err)
                    self.assertIn("%s:%d:" % (path, line), err)
                    self.assertIn(key, err)
                    self.assertEqual(r.stdout, b"")
                    # serve refuses the same file the same way, before doing anything
                    r = run_porter(["serve", "--config", path], cwd=tmp, timeout=20)
                    self.assertNotEqual(r.returncode, 0)
                    self.assertIn("%s:%d:" % (path, line), r.stderr.decode())

    def test_missing_config_file(self):
        r = run_porter(["check-config", "/nonexistent/porter.toml"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent/porter.toml", r.stderr.decode())

    def test_usage(self):
        r = run_porter(["frobnicate"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("usage: porter", r.stderr.decode())


class PasswdTest(PorterTestCase):
    def test_hash_verifies_with_crypt(self):
        pw = "correct horse battery staple"
        hashes = []
        for _ in range(2):
            r = run_porter(["passwd"], stdin=(pw + "\n").encode())
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            h = r.stdout.decode().strip()
            self.assertRegex(h, r"^\$(y|gy|7|2b|6)\$")
            self.assertEqual(crypt.crypt(pw, h), h)
            self.assertNotEqual(crypt.crypt(pw + "x", h), h)
            hashes.append(h)
        self.assertNotEqual(hashes[0], hashes[1], "no random salt")

    def test_empty_password_refused(self):
        r = run_porter(["passwd"], stdin=b"\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout, b"")


class DkimKeygenTest(PorterTestCase):
    def public_b64(self, key_file):
        """The key's public half as DKIM's p= wants it, computed by openssl, not by porter."""
        der = subprocess.run(["openssl", "pkey", "-in", key_file, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        return base64.b64encode(der).decode()

    def test_rsa_and_ed25519_records_match_their_keys(self):
        with tempfile.TemporaryDirectory() as tmp:
            for algorithm, k, strip in (("rsa-sha256", "rsa", 0), ("ed25519-sha256", "ed25519", 12)):
                out = os.path.join(tmp, algorithm + ".key")
                r = run_porter(["dkim", "keygen", "example.com", "sel1", "--algorithm", algorithm,
                                "--out", out])
                self.assertEqual(r.returncode, 0, r.stderr.decode())
                self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
                text = r.stdout.decode()
                self.assertIn("sel1._domainkey.example.com", text)
                # The record may be split into several quoted strings (255-octet limit).
                record = "".join(re.findall(r'"([^"]*)"', text))
                self.assertRegex(record, r"^v=DKIM1; k=%s; p=" % k)
                p = record.split("p=", 1)[1]
                expected = self.public_b64(out)
                if strip:  # Ed25519 p= is the raw 32-byte key (RFC 8463), not the SPKI
                    expected = base64.b64encode(base64.b64decode(expected)[strip:]).decode()
                self.assertEqual(p, expected)

    def test_never_overwrites_a_key(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "k.key")
            with open(out, "w") as f:
                f.write("precious\n")
            r = run_porter(["dkim", "keygen", "example.com", "s", "--out", out])
            self.assertNotEqual(r.returncode, 0)
            with open(out) as f:
                self.assertEqual(f.read(), "precious\n")
            r = run_porter(["dkim", "keygen", "bad domain", "s", "--out", out + "2"])
            self.assertNotEqual(r.returncode, 0)


class QueueCommandsTest(PorterTestCase):
    def test_list_and_show(self):
        server = PorterServer("cli-queue", roles=("relay",), tls=False)
        self.addCleanup(server.cleanup)
        server.start()
        token = uuid.uuid4().hex
        msg = make_message(token, sender="app@internal.example")
        with smtplib.SMTP("127.0.0.1", server.port("relay"), local_hostname="cli.client.test",
                          timeout=30) as s:
            s.ehlo()
            self.assertEqual(s.mail("app@internal.example")[0], 250)
            self.assertEqual(s.rcpt("one@remote.example")[0], 250)
            self.assertEqual(s.rcpt("two@local.test")[0], 250)
            code, resp = s.data(msg)
            self.assertEqual(code, 250)
        qid = queued_id(resp.decode())
        stored = server.queue_cat(qid)
        split_prefix(stored, msg)

        for running in (True, False):
            with self.subTest(daemon_running=running):
                if not running:
                    self.assertEqual(server.stop(), 0, "SIGTERM should end porter cleanly")
                    self.assertTrue(server.wait_for_log(r" stopped"))
                out = server.cli("queue", "list").stdout.decode()
                self.assertRegex(out, r"(?m)^ID\s+AGE\s+SIZE\s+STATE\s+SENDER -> RECIPIENTS$")
                self.assertRegex(out, r"(?m)^%s\s+\d+s\s+%d\s+active\s+<app@internal\.example> "
                                      r"-> <one@remote\.example> <two@local\.test>$"
                                 % (qid, len(stored)))
                self.assertRegex(out, r"(?m)^1 message$")

                out = server.cli("queue", "show", qid).stdout.decode()
                self.assertRegex(out, r"(?m)^id: %s$" % qid)
                self.assertRegex(out, r"(?m)^state: active$")
                self.assertRegex(out, r"(?m)^size: %d$" % len(stored))
                self.assertRegex(out, r"(?m)^from: <app@internal\.example>$")
                self.assertRegex(out, r"(?m)^to: <one@remote\.example> pending$")
                self.assertRegex(out, r"(?m)^to: <two@local\.test> pending$")
                self.assertRegex(out, r"(?m)^client: 127\.0\.0\.1 helo=cli\.client\.test "
                                      r"listener=relay tls=no user=-$")
                headers = out.split("\n\n", 1)[1]
                self.assertTrue(headers.startswith("Received: from cli.client.test"), headers)
                self.assertIn("Subject: test %s\n" % token, headers.replace("\r\n", "\n"))
                self.assertIn("From: app@internal.example", headers)
                self.assertNotIn("line 0 of", headers)  # headers only, not the body

        r = server.cli("queue", "show", "0000000000000000", check=False)
        self.assertNotEqual(r.returncode, 0)
        r = server.cli("queue", "cat", "../../etc/passwd", check=False)
        self.assertNotEqual(r.returncode, 0)


    def test_cat_and_show_after_restart(self):
        # Bodies of 4 KiB and more live in RocksDB blob files once the memtable is flushed
        # (a restart flushes it); the CLI must read them while porter runs and after it stops.
        server = PorterServer("cli-restart", roles=("relay",), tls=False)
        self.addCleanup(server.cleanup)
        server.start()
        sent = {}
        for lines in (2, 60, 120, 5000):  # about 0.3, 2.9, 5.6 and 233 KiB
            msg = make_message(uuid.uuid4().hex, body_lines=lines)
            with smtplib.SMTP("127.0.0.1", server.port("relay"), timeout=30) as s:
                s.ehlo()
                s.mail("app@internal.example")
                s.rcpt("one@remote.example")
                code, resp = s.data(msg)
                self.assertEqual(code, 250, resp)
            sent[queued_id(resp.decode())] = msg
        self.assertEqual(server.stop(), 0)
        server.start()
        for running in (True, False):
            if not running:
                self.assertEqual(server.stop(), 0)
            for qid, msg in sent.items():
                with self.subTest(daemon_running=running, size=len(msg)):
                    r = server.cli("queue", "cat", qid, check=False)
                    self.assertEqual(r.returncode, 0, r.stderr.decode())
                    split_prefix(r.stdout, msg)
                    r = server.cli("queue", "show", qid, check=False)
                    self.assertEqual(r.returncode, 0, r.stderr.decode())
                    self.assertIn("id: %s\n" % qid, r.stdout.decode())


class EmbeddedDefaultTest(PorterTestCase):
    def test_serve_without_config(self):
        server = EmbeddedDefaultPorter("cli-default")
        self.addCleanup(server.cleanup)
        server.start()
        m = re.search(r'demo user "demo" password "([^"]+)" may send as (demo@[\w.-]+)',
                      server.log_text())
        self.assertIsNotNone(m, server.log_tail())
        password, address = m.group(1), m.group(2)

        cert = os.path.join(server.dir, "var", "tls", "cert.pem")
        self.assertTrue(os.path.exists(cert))
        self.assertTrue(os.path.exists(os.path.join(server.dir, "var", "tls", "key.pem")))
        r = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("DNS:localhost", r.stdout)
        self.assertIn("IP Address:127.0.0.1", r.stdout)

        for port in (2525, 2587):
            with SmtpClient(port) as c:
                c.expect(220, "ESMTP Porter")
        with SmtpClient(2465, implicit_tls=True) as c:
            c.expect(220, "ESMTP Porter")

        token = uuid.uuid4().hex
        msg = make_message(token, sender=address)
        with smtplib.SMTP("127.0.0.1", 2587, local_hostname="dev.client.test", timeout=30) as s:
            s.ehlo()
            s.starttls(context=client_tls_context())
            s.ehlo()
            s.login("demo", password)
            self.assertEqual(s.mail(address)[0], 250)
            self.assertEqual(s.rcpt("friend@porter.test")[0], 250)
            code, resp = s.data(msg)
            self.assertEqual(code, 250, resp)
        qid = queued_id(resp.decode())
        # (delivery is on in the development default, so the queue may not keep it)
        self.assertTrue(server.wait_for_log(r"queued id=%s .*from=<%s> .*user=demo"
                                            % (qid, re.escape(address))))
        # `porter queue` without --config reads the default's ./var
        r = run_porter(["queue", "list"], cwd=server.dir)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertRegex(r.stdout.decode(), r"(?m)^\d+ messages?$")

        # the certificate is verifiable for "localhost" with itself as the trust anchor
        ctx = ssl.create_default_context(cafile=cert)
        with smtplib.SMTP("localhost", 2587, timeout=30) as s:
            s.starttls(context=ctx)

        # a restart keeps the demo user and its password
        self.assertEqual(server.stop(), 0)
        server.start()
        self.assertEqual(len(re.findall(r'demo user "demo" password "%s"' % re.escape(password),
                                        server.log_text())), 2)
        with smtplib.SMTP("127.0.0.1", 2587, local_hostname="dev.client.test", timeout=30) as s:
            s.starttls(context=client_tls_context())
            s.login("demo", password)


if __name__ == "__main__":
    unittest.main()
