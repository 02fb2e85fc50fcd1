"""IMAP (issue 4): mail delivered to a local user is read with real clients: Python's
imaplib (STARTTLS on the imap port, implicit TLS on imaps), curl's imaps, and mbsync (isync)
synchronising the whole account into a Maildir. Two sessions on one mailbox see each other's
flag changes and expunges, IDLE learns of a delivery within a second, APPEND/COPY/MOVE and
mailbox management work, and bad input gets BAD/NO without disturbing another session.
"""

import imaplib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

from porter_fixture import PorterServer, PorterTestCase, client_tls_context, make_message
from test_local_delivery import (NO_DNS, PASSWORDS, USERS, deliver_to, mailbox_uids, run_cli,
                                 submit)



class ImapTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.porter = PorterServer("imap", roles=("submission", "imap", "imaps"), users=USERS,
                                  settings={"delivery": {"enabled": True, "dns_servers": NO_DNS}})
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.stop()
        cls.porter.cleanup()

    def deliver(self, user, count=1, subject_token=None):
        return deliver_to(self.porter, user, count, subject_token)

    def stored(self, user, uid, box="INBOX"):
        return run_cli(self.porter, "mailbox", "cat", user, box, str(uid))

    def imap(self, user="alice"):
        m = imaplib.IMAP4("127.0.0.1", self.porter.port("imap"), timeout=10)
        m.starttls(ssl_context=client_tls_context())
        m.login(user, PASSWORDS[user])
        self.addCleanup(self.logout, m)
        return m

    def imaps(self, user):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.porter.port("imaps"),
                              ssl_context=client_tls_context(), timeout=10)
        m.login(user, PASSWORDS[user])
        self.addCleanup(self.logout, m)
        return m

    @staticmethod
    def logout(m):
        try:
            m.logout()
        except Exception:
            pass

    def test_fetch_is_byte_identical(self):
        self.deliver("alice", 2)
        uids = mailbox_uids(self.porter, "alice")
        m = self.imap("alice")
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(int(data[0]), len(uids))
        for uid in uids:
            typ, data = m.uid("FETCH", str(uid), "(BODY.PEEK[] RFC822.SIZE FLAGS)")
            self.assertEqual(typ, "OK", data)
            self.assertEqual(data[0][1], self.stored("alice", uid))
            # imaplib splits the response at the literal: the items after it come next.
            self.assertIn(b"RFC822.SIZE %d" % len(self.stored("alice", uid)), data[1])
        new = str(uids[-1])  # just delivered: nobody has read it
        typ, data = m.uid("FETCH", new, "(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"ENVELOPE (", data[0][0])
        self.assertIn(b'BODYSTRUCTURE ("TEXT" "PLAIN"', data[0][0])
        self.assertTrue(data[0][1].lower().startswith(b"subject: test "), data[0][1])
        # PEEK left \Seen alone; a plain BODY[] sets it.
        typ, data = m.uid("FETCH", new, "(FLAGS)")
        self.assertNotIn(b"\\Seen", data[0])
        m.uid("FETCH", new, "(BODY[TEXT])")
        typ, data = m.uid("FETCH", new, "(FLAGS)")
        self.assertIn(b"\\Seen", data[0])

    def test_search(self):
        token = uuid.uuid4().hex
        self.deliver("carol", 2, subject_token=token)
        self.deliver("carol", 1)
        m = self.imap("carol")
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", token)
        self.assertEqual(typ, "OK")
        self.assertEqual(len(data[0].split()), 2)
        typ, data = m.uid("SEARCH", "FROM", "carol@local.test", "UNSEEN", "SUBJECT", token)
        uids = [int(u) for u in data[0].split()]
        self.assertEqual(len(uids), 2)
        m.uid("STORE", str(uids[0]), "+FLAGS", "(\\Seen)")
        typ, data = m.uid("SEARCH", "UNSEEN", "SUBJECT", token)
        self.assertEqual([int(u) for u in data[0].split()], uids[1:])
        typ, data = m.search(None, "BODY", "\"line 1 of %s\"" % token)
        self.assertEqual(len(data[0].split()), 2)
        typ, data = m.search(None, "OR", "SUBJECT", token, "SINCE", "1-Jan-2000", "NOT", "DELETED")
        self.assertEqual(typ, "OK")
        typ, data = m.search(None, "CHARSET", "KOI8-R", "ALL")
        self.assertEqual(typ, "NO")
        self.assertIn(b"BADCHARSET", data[0])
        with self.assertRaises(imaplib.IMAP4.error):
            m.search(None, "(UNSEEN")

    def test_two_sessions_see_flags_and_expunges(self):
        self.deliver("bob", 2)
        a = self.imap("bob")
        b = self.imaps("bob")
        n = int(a.select("INBOX")[1][0])
        b.select("INBOX")
        a.store(str(n), "+FLAGS", "(\\Flagged $Work)")
        typ, data = b.noop()
        untagged = b.untagged_responses.get("FETCH", [])
        self.assertTrue(any(b"\\Flagged" in u and b"$Work" in u for u in untagged), untagged)
        a.store("1", "+FLAGS", "(\\Deleted)")
        a.expunge()
        b.noop()
        self.assertIn("EXPUNGE", b.untagged_responses)

    def test_idle_wakes_on_delivery(self):
        m = self.imap("carol")
        m.select("INBOX")
        tag = m._new_tag().decode()
        m.send(("%s IDLE\r\n" % tag).encode())
        self.assertTrue(m.readline().startswith(b"+"))
        start = time.monotonic()
        submit(self.porter, "alice", ["carol@local.test"],
               make_message(uuid.uuid4().hex, sender="alice@local.test", to="carol@local.test"))
        sock = m.socket()
        sock.settimeout(5)
        line = m.readline()
        self.assertRegex(line, rb"^\* \d+ EXISTS")
        self.assertLess(time.monotonic() - start, 1.0)  # the bar: within one second
        m.send(b"DONE\r\n")
        self.assertTrue(m.readline().startswith(tag.encode() + b" OK"))

    def test_append_copy_move_and_mailboxes(self):
        m = self.imap("alice")
        typ, data = m.list()
        names = b"\n".join(data)
        for special in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive"):
            self.assertIn(special, names)
        msg = make_message(uuid.uuid4().hex, sender="alice@local.test")
        typ, data = m.append("Drafts", "(\\Draft)", None, msg)
        self.assertEqual(typ, "OK", data)
        self.assertIn(b"APPENDUID", data[0])
        uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
        self.assertEqual(self.stored("alice", uid, "Drafts"), msg)
        self.assertEqual(m.create("Projects/2026")[0], "OK")
        m.select("Drafts")
        typ, data = m.uid("COPY", str(uid), "Projects/2026")
        self.assertEqual(typ, "OK", data)
        # imaplib files the tagged reply's response code under its name.
        code, copyuid = m.response("COPYUID")
        self.assertRegex(copyuid[0], rb"^\d+ %d \d+$" % uid)
        typ, data = m.uid("MOVE", str(uid), "Archive")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(mailbox_uids(self.porter, "alice", "Drafts"), [])
        self.assertEqual(len(mailbox_uids(self.porter, "alice", "Archive")), 1)
        self.assertEqual(m.rename("Projects/2026", "Projects/2027")[0], "OK")
        typ, data = m.status("Projects/2027", "(MESSAGES UIDNEXT UNSEEN)")
        self.assertEqual(typ, "OK")
        self.assertIn(b"MESSAGES 1", data[0])
        self.assertEqual(m.delete("Projects/2027")[0], "OK")
        self.assertEqual(m.select("Projects/2027")[0], "NO")

    def test_no_login_before_tls_and_bad_input(self):
        m = imaplib.IMAP4("127.0.0.1", self.porter.port("imap"), timeout=10)
        self.addCleanup(self.logout, m)
        self.assertIn("LOGINDISABLED", m.capabilities)
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("alice", PASSWORDS["alice"])
        good = self.imap("alice")
        good.select("INBOX")
        with socket.create_connection(("127.0.0.1", self.porter.port("imap")), timeout=10) as s:
            f = s.makefile("rb")
            self.assertTrue(f.readline().startswith(b"* OK"))
            for line, want in ((b"a1 SELECT INBOX\r\n", b"a1 BAD"),
                               (b"a2 FETCH 1 FLAGS\r\n", b"a2 BAD"),
                               (b"a3 LOGIN {999999999}\r\n", b"a3 BAD"),
                               (b"\x00\xff\r\n", b"* BAD"),
                               (b"a4 " + b"X" * 70000 + b"\r\n", b"a4 BAD")):
                s.sendall(line)
                got = f.readline()
                self.assertTrue(got.startswith(want), (line[:30], got))
        self.assertEqual(good.noop()[0], "OK")

    def test_bad_mailbox_names(self):
        m = self.imap("alice")
        for name in ("a/../b", "/abs", "a//b", "..", "x\x01y", "a%b", "a*b"):
            typ, data = m.create('"%s"' % name)
            self.assertEqual(typ, "NO", (name, data))
        # Not UTF-8: raw bytes in a literal.
        with socket.create_connection(("127.0.0.1", self.porter.port("imaps")), timeout=10) as raw:
            s = client_tls_context().wrap_socket(raw)
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"a LOGIN alice \"%s\"\r\n" % PASSWORDS["alice"].encode())
            self.assertTrue(f.readline().startswith(b"a OK"))
            s.sendall(b"b CREATE {4+}\r\n\xff\xfe\x80x\r\n")
            self.assertTrue(f.readline().startswith(b"b NO"))
            # An unterminated literal, then the connection drops: nothing breaks.
            s.sendall(b"c APPEND INBOX {100+}\r\nonly a few bytes")
        self.assertEqual(m.noop()[0], "OK")

    def test_curl_imaps(self):
        self.deliver("alice", 1)
        uids = mailbox_uids(self.porter, "alice")
        out = subprocess.run(
            ["curl", "-sS", "-k", "--max-time", "20",
             "imaps://127.0.0.1:%d/INBOX;UID=%d" % (self.porter.port("imaps"), uids[-1]),
             "-u", "alice:" + PASSWORDS["alice"]],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True).stdout
        self.assertEqual(out, self.stored("alice", uids[-1]))

    def test_mbsync_synchronises_the_account(self):
        self.deliver("bob", 3)
        uids = mailbox_uids(self.porter, "bob")
        tmp = tempfile.mkdtemp(prefix="porter-mbsync-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert = os.path.join(self.porter.dir, "tls", "cert.pem")
        os.makedirs(os.path.join(tmp, "mail"))
        rc = os.path.join(tmp, "mbsyncrc")
        with open(rc, "w") as f:
            f.write("IMAPAccount porter\nHost 127.0.0.1\nPort %d\nUser bob\nPass %s\n"
                    "SSLType IMAPS\nCertificateFile %s\n\n"
                    "IMAPStore remote\nAccount porter\n\n"
                    "MaildirStore local\nPath %s/mail/\nInbox %s/mail/INBOX\nSubFolders Verbatim\n\n"
                    "Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\n"
                    "Sync Pull\nSyncState *\n"
                    % (self.porter.port("imaps"), PASSWORDS["bob"], cert, tmp, tmp))
        r = subprocess.run(["mbsync", "-c", rc, "-a"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode("utf-8", "replace"))
        got = {}
        for sub in ("new", "cur"):
            d = os.path.join(tmp, "mail", "INBOX", sub)
            for name in os.listdir(d):
                with open(os.path.join(d, name), "rb") as f:
                    got[name] = f.read()
        self.assertEqual(len(got), len(uids))
        # mbsync keeps Maildir files with LF line ends and may add an X-TUID header line.
        stored = sorted(self.stored("bob", u).replace(b"\r\n", b"\n") for u in uids)
        fetched = sorted(re.sub(rb"X-TUID: [^\n]*\n", b"", g) for g in got.values())
        self.assertEqual(fetched, stored)
        for special in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertTrue(os.path.isdir(os.path.join(tmp, "mail", special)), special)


if __name__ == "__main__":
    unittest.main()
