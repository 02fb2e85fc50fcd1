"""POP3 (issue 4): mail submitted on the submission port to a local user, delivered into the
mailbox store, read back with real clients: Python's poplib (STLS on the pop3 port and
implicit TLS on pop3s), curl's pop3s, and getmail6 downloading the whole account into a
Maildir. What they read must be byte for byte what the store holds, which ends with exactly
the client's bytes.

Also: deletions happen only at QUIT (a dropped connection deletes nothing), one session per
mailbox, UIDL stable across sessions, no login before TLS, and bad input answered with -ERR
without disturbing another session.
"""

import email
import os
import poplib
import shutil
import socket
import subprocess
import tempfile
import unittest

from delivery_support import wait_until
from porter_fixture import PorterServer, PorterTestCase, client_tls_context
from test_local_delivery import NO_DNS, PASSWORDS, USERS, deliver_to, mailbox_uids, run_cli



class Pop3Test(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.porter = PorterServer("pop3", roles=("submission", "pop3", "pop3s"), users=USERS,
                                  settings={"delivery": {"enabled": True, "dns_servers": NO_DNS}})
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.stop()
        cls.porter.cleanup()

    def deliver(self, user, count=1, subject_token=None):
        return deliver_to(self.porter, user, count, subject_token)

    def stored(self, user, uid):
        return run_cli(self.porter, "mailbox", "cat", user, "INBOX", str(uid))

    def pop(self, user="alice"):
        p = poplib.POP3("127.0.0.1", self.porter.port("pop3"), timeout=10)
        p.stls(context=client_tls_context())
        p.user(user)
        p.pass_(PASSWORDS[user])
        return p

    def try_pop(self, user):
        """A logged-in session, or None while another session holds the mailbox."""
        try:
            return self.pop(user)
        except poplib.error_proto as e:
            if b"[IN-USE]" in e.args[0]:
                return None
            raise

    def pop_ssl(self, user):
        p = poplib.POP3_SSL("127.0.0.1", self.porter.port("pop3s"), timeout=10,
                            context=client_tls_context())
        p.user(user)
        p.pass_(PASSWORDS[user])
        return p

    def test_retr_is_byte_identical_and_uidl_stable(self):
        sent = self.deliver("alice", 3)
        uids = mailbox_uids(self.porter, "alice")
        p = self.pop("alice")
        count, octets = p.stat()
        self.assertEqual(count, len(uids))
        first_uidl = p.uidl()[1]
        for n, uid in enumerate(uids, start=1):
            stored = self.stored("alice", uid)
            resp, lines, size = p.retr(n)
            got = b"\r\n".join(lines) + b"\r\n"
            self.assertEqual(got, stored)
            self.assertEqual(int(p.list(n).split()[2]), len(stored))
        for msg in sent:
            self.assertTrue(any(self.stored("alice", u).endswith(msg) for u in uids))
        p.quit()
        p = self.pop_ssl("alice")
        self.assertEqual(p.uidl()[1], first_uidl)
        top = p.top(1, 0)[1]
        self.assertIn(b"", top)
        self.assertTrue(any(line.lower().startswith(b"subject:") for line in top))
        p.quit()

    def test_deletion_only_at_quit(self):
        self.deliver("bob", 3)
        uids = mailbox_uids(self.porter, "bob")
        # DELE, then the connection drops: nothing is deleted.
        p = self.pop("bob")
        p.dele(1)
        p.sock.shutdown(socket.SHUT_RDWR)  # the file object would keep the socket open
        p.sock.close()
        # The server releases the mailbox when it sees the connection close.
        sessions = []
        self.assertTrue(wait_until(lambda: sessions.append(self.try_pop("bob")) or sessions[-1],
                                   timeout=5))
        p = sessions[-1]
        self.assertEqual(p.stat()[0], len(uids))
        p.dele(1)
        p.dele(2)
        self.assertIn(b"2 messages deleted", p.quit())
        self.assertEqual(mailbox_uids(self.porter, "bob"), uids[2:])
        p = self.pop("bob")
        self.assertEqual(p.stat()[0], len(uids) - 2)
        p.quit()

    def test_one_session_per_mailbox(self):
        self.deliver("carol", 1)
        first = self.pop("carol")
        with self.assertRaises(poplib.error_proto) as cm:
            self.pop("carol")
        self.assertIn(b"[IN-USE]", cm.exception.args[0])
        first.quit()
        self.pop("carol").quit()

    def test_no_login_before_tls(self):
        p = poplib.POP3("127.0.0.1", self.porter.port("pop3"), timeout=10)
        capa = p.capa()
        self.assertIn("STLS", capa)
        self.assertNotIn("USER", capa)
        with self.assertRaises(poplib.error_proto) as cm:
            p.user("alice")
        self.assertIn(b"[AUTH]", cm.exception.args[0])
        p.quit()

    def test_wrong_password(self):
        p = poplib.POP3("127.0.0.1", self.porter.port("pop3"), timeout=10)
        p.stls(context=client_tls_context())
        p.user("alice")
        with self.assertRaises(poplib.error_proto) as cm:
            p.pass_("wrong")
        self.assertIn(b"[AUTH]", cm.exception.args[0])
        p.quit()

    def test_bad_input_does_not_disturb_another_session(self):
        self.deliver("alice", 1)
        good = self.pop("alice")
        count = good.stat()[0]
        with socket.create_connection(("127.0.0.1", self.porter.port("pop3")), timeout=10) as s:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"+OK"))
            for line in (b"RETR 1\r\n", b"\x00\xff garbage\r\n", b"X" * 5000 + b"\r\n",
                         b"LIST -1\r\n", b"STLS extra\r\n"):
                s.sendall(line)
                self.assertTrue(f.readline().startswith(b"-ERR"), line[:20])
        self.assertEqual(good.stat()[0], count)
        good.quit()

    def test_curl_pop3s(self):
        self.deliver("alice", 1)
        uids = mailbox_uids(self.porter, "alice")
        out = subprocess.run(
            ["curl", "-sS", "-k", "--max-time", "20",
             "pop3s://127.0.0.1:%d/%d" % (self.porter.port("pop3s"), len(uids)),
             "-u", "alice:" + PASSWORDS["alice"]],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True).stdout
        self.assertEqual(out, self.stored("alice", uids[-1]))

    def test_getmail_downloads_the_whole_account(self):
        self.deliver("bob", 2)
        uids = mailbox_uids(self.porter, "bob")
        tmp = tempfile.mkdtemp(prefix="porter-getmail-")
        self.addCleanup(shutil.rmtree, tmp, True)
        maildir = os.path.join(tmp, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(maildir, sub))
        # getmail refuses to deliver as root; it writes the Maildir as `nobody`.
        for d in (tmp, maildir) + tuple(os.path.join(maildir, s) for s in ("cur", "new", "tmp")):
            os.chmod(d, 0o777)
        rc = os.path.join(tmp, "getmailrc")
        with open(rc, "w") as f:
            f.write("[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\n"
                    "port = %d\nusername = bob\npassword = %s\n\n"
                    "[destination]\ntype = Maildir\npath = %s/\nuser = nobody\n\n"
                    "[options]\nread_all = true\ndelete = false\nverbose = 0\n"
                    % (self.porter.port("pop3s"), PASSWORDS["bob"], maildir))
        r = subprocess.run(["getmail", "--getmaildir", tmp, "--rcfile", rc], timeout=60,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout.decode("utf-8", "replace"))
        got = []
        for name in os.listdir(os.path.join(maildir, "new")):
            with open(os.path.join(maildir, "new", name), "rb") as f:
                got.append(f.read())
        self.assertEqual(len(got), len(uids))
        # getmail writes LF line ends and adds its own Return-Path/Delivered-To; compare the
        # parsed messages' Message-IDs and bodies with the store's.
        stored = [email.message_from_bytes(self.stored("bob", u)) for u in uids]
        fetched = [email.message_from_bytes(g.replace(b"\n", b"\r\n")) for g in got]
        self.assertEqual(sorted(m["Message-ID"] for m in stored),
                         sorted(m["Message-ID"] for m in fetched))
        by_id = {m["Message-ID"]: m for m in fetched}
        for m in stored:
            self.assertEqual(by_id[m["Message-ID"]].get_payload(), m.get_payload())


if __name__ == "__main__":
    unittest.main()
