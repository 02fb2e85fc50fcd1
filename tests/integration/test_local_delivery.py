"""Local delivery (issue 4): mail for local.test is appended to its users' mailboxes in the
batch that takes it off the queue, and read back with `porter mailbox list|cat`.

A user submits on the submission port (smtplib, STARTTLS + AUTH); the message lands in the
recipient's INBOX as Return-Path and Delivered-To lines followed by exactly the queued bytes
(Porter's Received, Message-ID and Date, then the client's bytes). Aliases fan out to each of
their users, plus-addresses reach the user before the '+', and every user gets INBOX and the
special-use mailboxes. A recipient removed from the configuration while its message waited
in the queue bounces with 5.1.1, and the DSN itself is delivered locally to the sender.
Quarantine (DMARC) into Junk is tested at unit level (tests/mta/local_delivery_test.cpp)
until a message can be quarantined through SMTP.

Delivery has a DNS server on a closed loopback port: nothing here may be looked up.
"""

import os
import re
import shutil
import smtplib
import tempfile
import time
import unittest
import uuid

from delivery_support import Dsn, wait_until
from porter_fixture import (PorterServer, PorterTestCase, client_tls_context, header_names,
                            make_message, queued_id, split_prefix)

PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-2", "carol": "carol-Secret-3"}
USERS = [("alice", PASSWORDS["alice"], ["alice@local.test"]),
         ("bob", PASSWORDS["bob"], ["bob@local.test", "robert@local.test"]),
         ("carol", PASSWORDS["carol"], ["carol@local.test"])]
STANDARD = {"INBOX": "-", "Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
            "Junk": "\\Junk", "Archive": "\\Archive"}
NO_DNS = ["127.0.0.1:1"]


def local_porter(name, delivery=True):
    server = PorterServer(name, roles=("submission", "relay"), users=USERS,
                          settings={"delivery": {"enabled": delivery, "dns_servers": NO_DNS},
                                    "relay": {"catch_all": ""}})
    # Arrays of tables are set after construction (the fixture merges tables only).
    server.settings["alias"] = [{"address": "team@local.test", "users": ["alice", "bob"]}]
    return server


def submit(server, user, rcpts, msg):
    """Sends `msg` as `user` on the submission port; returns the queue ID."""
    sender = "%s@local.test" % user
    with smtplib.SMTP("127.0.0.1", server.port("submission"), local_hostname="client.test",
                      timeout=30) as s:
        s.starttls(context=client_tls_context())
        s.login(user, PASSWORDS[user])
        code, resp = s.mail(sender)
        if code != 250:
            raise AssertionError("MAIL refused: %d %r" % (code, resp))
        for r in rcpts:
            code, resp = s.rcpt(r)
            if code != 250:
                raise AssertionError("RCPT %s refused: %d %r" % (r, code, resp))
        code, resp = s.data(msg)
        if code != 250:
            raise AssertionError("DATA refused: %d %r" % (code, resp))
    return queued_id(resp.decode())


class CliError(AssertionError):
    pass


def mailbox_uids(server, user, box="INBOX"):
    """The UIDs in one of the user's mailboxes; none before the user's first delivery."""
    try:
        out = run_cli(server, "mailbox", "list", user, box).decode()
    except CliError as e:
        if "has no mailbox" in str(e):
            return []
        raise
    return [int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s+\d+\s", out, re.M)]


def deliver_to(server, user, count=1, subject_token=None):
    """Submits `count` messages from carol to `user` and waits until they are in the INBOX;
    returns the client's bytes of each, in order."""
    before = len(mailbox_uids(server, user))
    sent = []
    for i in range(count):
        msg = make_message(subject_token or uuid.uuid4().hex, sender="carol@local.test",
                           to="%s@local.test" % user, body_lines=3 + i)
        submit(server, "carol", ["%s@local.test" % user], msg)
        sent.append(msg)
    if not wait_until(lambda: len(mailbox_uids(server, user)) >= before + count, timeout=20):
        raise AssertionError("messages did not reach %s's INBOX" % user)
    return sent


def run_cli(server, *args):
    """stdout of a porter CLI verb; CliError with its stderr when it fails. A read-only open
    can lose a race with the daemon's compaction, which deletes files the open had listed
    (docs/queue-format.md, "Reading while the daemon runs": an error to retry)."""
    for _ in range(20):
        r = server.cli(*args, check=False)
        if r.returncode == 0 or b"queue: opening" not in r.stderr:
            break
        time.sleep(0.1)
    if r.returncode != 0:
        raise CliError("porter %s: %s" % (" ".join(args), r.stderr.decode("utf-8", "replace")))
    return r.stdout


def mailboxes(server, user):
    """`porter mailbox list USER` -> {name: (special use, messages, size, uidvalidity,
    uidnext)}."""
    lines = run_cli(server, "mailbox", "list", user).decode().splitlines()
    assert lines[0].split()[0] == "MAILBOX", lines
    out = {}
    for line in lines[1:-1]:
        name, use, count, size, uidvalidity, uidnext, _ = line.split()
        out[name] = (use, int(count), int(size), int(uidvalidity), int(uidnext))
    assert re.match(r"^%d mailbox(es)?$" % len(out), lines[-1]), lines
    return out


def messages(server, user, mailbox="INBOX"):
    """`porter mailbox list USER MAILBOX` -> [(uid, size, flags)]."""
    lines = run_cli(server, "mailbox", "list", user, mailbox).decode().splitlines()
    assert lines[0].split()[0] == "UID", lines
    out = []
    for line in lines[1:-1]:
        m = re.match(r"^\s*(\d+)\s+(\d+)\s+(.{31})\s+\((.*)\)$", line)
        assert m, line
        out.append((int(m.group(1)), int(m.group(2)), m.group(4)))
    assert re.match(r"^%d messages?$" % len(out), lines[-1]), lines
    return out


def cat(server, user, mailbox, uid):
    return run_cli(server, "mailbox", "cat", user, mailbox, str(uid))


def stored_with(server, user, needle, mailbox="INBOX", timeout=15):
    """The stored messages of user/mailbox that contain `needle` (bytes), once there are
    any."""
    def found():
        if mailbox not in mailboxes(server, user):
            return []
        return [m for m in (cat(server, user, mailbox, uid)
                            for uid, _, _ in messages(server, user, mailbox)) if needle in m]
    return wait_until(found, timeout, 0.1) or []


class LocalDeliveryTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = local_porter("local").start()
        cls.addClassCleanup(cls.server.cleanup)

    def setUp(self):
        self.token = uuid.uuid4().hex

    def delivered_line(self, qid, rcpt, user, mailbox="INBOX"):
        m = self.server.wait_for_log(
            r"delivery id=%s to=<%s> relay=local delay=\d+s dsn=2\.0\.0 status=sent user=%s "
            r"mailbox=%s uid=(\d+)" % (qid, re.escape(rcpt), user, mailbox), timeout=15)
        self.assertTrue(m, "no local delivery of %s to %s (%s)" % (qid, rcpt, user))
        return int(m.group(1))

    def test_message_is_stored_byte_identical(self):
        msg = make_message(self.token, sender="alice@local.test", to="carol@local.test")
        qid = submit(self.server, "alice", ["carol@local.test"], msg)
        uid = self.delivered_line(qid, "carol@local.test", "carol")
        stored = cat(self.server, "carol", "INBOX", uid)
        prefix = split_prefix(stored, msg)
        self.assertTrue(prefix.startswith(b"Return-Path: <alice@local.test>\r\n"
                                          b"Delivered-To: carol@local.test\r\n"), prefix)
        self.assertEqual(header_names(prefix)[:3], ["return-path", "delivered-to", "received"])
        self.assertIn(("id %s" % qid).encode(), re.sub(rb"\r\n[ \t]+", b" ", prefix))
        listed = [m for m in messages(self.server, "carol") if m[0] == uid]
        self.assertEqual(listed, [(uid, len(stored), "")])
        self.assertTrue(wait_until(lambda: all(e.id != qid for e in self.server.queue_list())),
                        "%s still queued after local delivery" % qid)

    def test_every_user_has_the_special_use_mailboxes(self):
        msg = make_message(self.token, sender="alice@local.test", to="bob@local.test")
        qid = submit(self.server, "alice", ["bob@local.test"], msg)
        self.delivered_line(qid, "bob@local.test", "bob")
        boxes = mailboxes(self.server, "bob")
        self.assertEqual(sorted(boxes), sorted(STANDARD))
        self.assertEqual(list(boxes)[0], "INBOX")
        for name, (use, count, size, uidvalidity, uidnext) in boxes.items():
            self.assertEqual(use, STANDARD[name], name)
            self.assertGreater(uidvalidity, 0, name)
            self.assertEqual(uidnext, count + 1, name)
        self.assertGreaterEqual(boxes["INBOX"][1], 1)
        self.assertEqual(len({b[3] for b in boxes.values()}), len(STANDARD))  # UIDVALIDITYs
        self.assertEqual(boxes["Junk"][1], 0)
        # No mailboxes are made up for a user who never got mail.
        self.assertEqual(mailboxes(self.server, "nobody"), {})

    def test_alias_fans_out_to_each_user(self):
        msg = make_message(self.token, sender="carol@local.test", to="team@local.test")
        qid = submit(self.server, "carol", ["team@local.test"], msg)
        for user in ("alice", "bob"):
            uid = self.delivered_line(qid, "team@local.test", user)
            stored = cat(self.server, user, "INBOX", uid)
            prefix = split_prefix(stored, msg)
            self.assertIn(b"\r\nDelivered-To: team@local.test\r\n", prefix)
        self.assertEqual(stored_with(self.server, "carol", self.token.encode(), timeout=0), [])

    def test_plus_address_and_second_address_reach_the_user(self):
        msg = make_message(self.token, sender="alice@local.test", to="bob+lists@local.test")
        qid = submit(self.server, "alice", ["Bob+Lists@local.test", "robert@local.test"], msg)
        uids = [self.delivered_line(qid, "Bob+Lists@local.test", "bob"),
                self.delivered_line(qid, "robert@local.test", "bob")]
        self.assertLess(uids[0], uids[1])
        self.assertIn(b"\r\nDelivered-To: Bob+Lists@local.test\r\n",
                      cat(self.server, "bob", "INBOX", uids[0]))
        self.assertIn(b"\r\nDelivered-To: robert@local.test\r\n",
                      cat(self.server, "bob", "INBOX", uids[1]))

    def test_export_to_maildir(self):
        msg = make_message(uuid.uuid4().hex, sender="carol@local.test", to="bob@local.test")
        submit(self.server, "carol", ["bob@local.test"], msg)
        self.assertTrue(wait_until(lambda: mailbox_uids(self.server, "bob"), 20))
        uids = mailbox_uids(self.server, "bob")
        target = tempfile.mkdtemp(prefix="porter-export-")
        self.addCleanup(shutil.rmtree, target, True)
        out = run_cli(self.server, "mailbox", "export", "bob", "--maildir", target).decode()
        self.assertIn("%d message" % len(uids), out)
        files = sorted(os.listdir(os.path.join(target, "cur")))
        self.assertEqual(len(files), len(uids))
        for name, uid in zip(sorted(files, key=lambda n: int(n.split(".")[1])), uids):
            self.assertTrue(name.endswith(":2,"), name)
            with open(os.path.join(target, "cur", name), "rb") as f:
                self.assertEqual(f.read(), run_cli(self.server, "mailbox", "cat", "bob", "INBOX",
                                                   str(uid)))
        for special in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
            self.assertTrue(os.path.isdir(os.path.join(target, "." + special, "cur")), special)

    def test_cli_refuses_what_is_not_there(self):
        for args in (("list", "bob", "NoSuchBox"), ("cat", "bob", "INBOX", "999999"),
                     ("cat", "bob", "INBOX", "x"), ("list",)):
            r = self.server.cli("mailbox", *args, check=False)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertTrue(r.stderr, args)


class QuotaTest(PorterTestCase):
    """A user over quota_mb gets 452 4.2.2 at RCPT for new mail; others are not affected."""

    @classmethod
    def setUpClass(cls):
        cls.server = PorterServer("quota", roles=("submission",), users=USERS,
                                  settings={"delivery": {"enabled": True, "dns_servers": NO_DNS},
                                            "relay": {"catch_all": ""}})
        cls.server.quota_mb["bob"] = 1
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.server.cleanup()

    def test_over_quota_refused_at_rcpt(self):
        # 0.95 MB fits bob's 1 MiB; a client that then declares 200 kB would not.
        big = make_message(uuid.uuid4().hex, sender="alice@local.test", to="bob@local.test",
                           body_lines=1) + (b"y" * 998 + b"\r\n") * 950
        submit(self.server, "alice", ["bob@local.test"], big)
        self.assertTrue(wait_until(lambda: len(mailbox_uids(self.server, "bob")) == 1, 20))
        with smtplib.SMTP("127.0.0.1", self.server.port("submission"), timeout=30) as s:
            s.starttls(context=client_tls_context())
            s.login("alice", PASSWORDS["alice"])
            s.mail("alice@local.test", options=["SIZE=200000"])
            code, resp = s.rcpt("bob@local.test")
            self.assertEqual(code, 452, resp)
            self.assertIn(b"4.2.2", resp)
            self.assertEqual(s.rcpt("carol@local.test")[0], 250)


class ConfigChangeTest(PorterTestCase):
    """Mail queued while delivery was off, then delivered after a restart with another
    configuration."""

    def setUp(self):
        self.token = uuid.uuid4().hex
        self.server = local_porter("local-change", delivery=False)
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def test_queued_bytes_are_delivered_and_a_removed_user_bounces(self):
        ok_msg = make_message(self.token, sender="alice@local.test", to="carol@local.test")
        gone_msg = make_message(self.token + "-gone", sender="alice@local.test",
                                to="bob@local.test")
        ok_id = submit(self.server, "alice", ["carol@local.test"], ok_msg)
        gone_id = submit(self.server, "alice", ["bob@local.test"], gone_msg)
        queued = self.server.queue_cat(ok_id)

        self.assertEqual(self.server.stop(), 0)
        self.server.users = [u for u in self.server.users if u[0] != "bob"]
        self.server.settings["alias"] = [{"address": "team@local.test", "users": ["alice"]}]
        self.server.settings["delivery"]["enabled"] = True
        self.server.start()

        # The queued bytes exactly, after the two lines local delivery adds.
        got = stored_with(self.server, "carol", self.token.encode())
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0], b"Return-Path: <alice@local.test>\r\n"
                                 b"Delivered-To: carol@local.test\r\n" + queued)

        self.assertTrue(self.server.wait_for_log(
            r"delivery id=%s to=<bob@local.test> relay=local delay=\d+s dsn=5\.1\.1 "
            r"status=bounced" % gone_id, timeout=15))
        # The DSN goes back to alice, who is local: it is in her INBOX.
        dsns = stored_with(self.server, "alice", (self.token + "-gone").encode())
        self.assertEqual(len(dsns), 1, dsns)
        prefix = b"Return-Path: <>\r\nDelivered-To: alice@local.test\r\n"
        self.assertTrue(dsns[0].startswith(prefix), dsns[0][:200])
        dsn = Dsn(dsns[0][len(prefix):])
        self.assertEqual(dsn.msg.get_content_type(), "multipart/report")
        self.assertEqual(len(dsn.recipients), 1)
        self.assertEqual(dsn.recipients[0].get("action"), "failed")
        self.assertEqual(dsn.recipients[0].get("status"), "5.1.1")
        self.assertIn("bob@local.test", dsn.recipients[0].get("final-recipient", ""))
        self.assertIn(b"no such user here", dsns[0])
        self.assertTrue(wait_until(lambda: self.server.queue_list() == []),
                        self.server.queue_list())


if __name__ == "__main__":
    unittest.main()
