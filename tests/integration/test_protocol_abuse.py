"""Hostile and careless clients on raw sockets: SMTP smuggling, over-size messages, long
lines, binary garbage, commands pipelined behind STARTTLS, error and connection limits,
idle timeouts; and the legitimate but demanding: PIPELINING of whole transactions, BDAT.

Two servers: a main one (relay for 127.0.0.1 plus submission, TLS on, small size and
error limits) and a strict one (bare LF refused, 2 s idle timeout, 2 connections per IP)."""

import random
import re
import socket
import time
import unittest
import uuid

from porter_fixture import (PorterServer, PorterTestCase, SmtpClient, client_tls_context,
                            make_message, queued_id, split_prefix)

MAX_SIZE = 65536
MAX_ERRORS = 10
MAX_RCPTS = 5

SMUGGLED_SENDER = "smuggler@evil.example"


def filler(size, token):
    """CRLF lines of 100 octets (the last one shorter), `size` octets in all."""
    line = (token + "-" + "x" * 98)[:98].encode() + b"\r\n"
    rest = size % 100
    assert rest != 1
    return line * (size // 100) + (line[:rest - 2] + b"\r\n" if rest else b"")


def smuggling_payload(token, smuggled_token, separator):
    """A message whose body holds `separator` followed by a whole second transaction."""
    return (make_message(token, sender="app@internal.example")
            + b"before the fake end " + token.encode() + separator
            + b"MAIL FROM:<" + SMUGGLED_SENDER.encode() + b">\r\n"
            + b"RCPT TO:<victim@remote.example>\r\n"
            + b"DATA\r\n"
            + b"From: " + SMUGGLED_SENDER.encode() + b"\r\n"
            + b"Subject: smuggled " + smuggled_token.encode() + b"\r\n\r\n"
            + b"smuggled body\r\n"
            + b".\r\n")


class AbuseTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = PorterServer(
            "abuse", roles=("relay", "submission", "submissions"),
            settings={"limits": {"max_message_size": MAX_SIZE, "max_errors": MAX_ERRORS,
                                 "max_recipients": MAX_RCPTS, "idle_timeout": 30}})
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.token = uuid.uuid4().hex

    def relay_client(self, source="127.0.0.1"):
        c = SmtpClient(self.server.port("relay"), source=source)
        self.addCleanup(c.close)
        c.expect(220)
        c.ehlo()
        return c

    def open_transaction(self, c, rcpts=("someone@remote.example",), mail_args=""):
        c.expect_cmd("MAIL FROM:<app@internal.example>" + mail_args, 250, "2.1.0")
        for r in rcpts:
            c.expect_cmd("RCPT TO:<%s>" % r, 250, "2.1.5")

    def assert_can_still_queue(self, c):
        self.open_transaction(c)
        c.expect_cmd("DATA", 354)
        msg = make_message(uuid.uuid4().hex)
        c.send(msg + b".\r\n")
        qid = queued_id(c.expect(250))
        split_prefix(self.server.queue_cat(qid), msg)

    def assert_nothing_queued_with(self, needle):
        self.assertEqual(self.server.messages_containing(needle.encode()), [])

    # --- smuggling --------------------------------------------------------------------------

    def test_smuggling_never_ends_data_early(self):
        # separator -> is the message accepted (bare LF normalised) or refused (bare CR)?
        cases = [(b"\n.\n", 250), (b"\n.\r\n", 250), (b"\r\n.\n", 250),
                 (b"\r.\r", 554), (b"\r\n.\r", 554), (b"\r.\r\n", 554)]
        for separator, expected in cases:
            with self.subTest(separator=separator):
                token, smuggled = uuid.uuid4().hex, uuid.uuid4().hex
                c = self.relay_client()
                self.open_transaction(c)
                c.expect_cmd("DATA", 354)
                c.send(smuggling_payload(token, smuggled, separator))
                code, lines = c.reply()
                self.assertEqual(code, expected, lines)
                # nothing else was answered: the next reply is the one to QUIT
                c.expect_cmd("QUIT", 221)
                found = self.server.messages_containing(smuggled.encode())
                if expected == 250:
                    self.assertEqual(found, [queued_id(lines)])
                    stored = self.server.queue_cat(found[0])
                    self.assertIn(b"MAIL FROM:<" + SMUGGLED_SENDER.encode() + b">\r\n", stored)
                    self.assertIn(b"before the fake end " + token.encode() + b"\r\n", stored)
                    self.assertNotIn(b"\r\r", stored)
                    self.assertIsNone(re.search(rb"[^\r]\n", stored), "bare LF stored")
                else:
                    self.assertIn("5.6.0", lines[-1])
                    self.assertIn("bare CR", lines[-1])
                    self.assertEqual(found, [])
                    self.assert_nothing_queued_with(token)
                self.assertNotIn(SMUGGLED_SENDER, [e.sender for e in self.server.queue_list()])

    # --- size -------------------------------------------------------------------------------

    def test_size_declared_at_mail(self):
        c = self.relay_client()
        ehlo = "\n".join(c.ehlo())
        self.assertIn("SIZE %d" % MAX_SIZE, ehlo)
        c.expect_cmd("MAIL FROM:<app@internal.example> SIZE=%d" % (MAX_SIZE + 1), 552, "5.3.4")
        c.expect_cmd("RCPT TO:<someone@remote.example>", 503)  # no transaction was opened
        c.expect_cmd("MAIL FROM:<app@internal.example> SIZE=%d" % MAX_SIZE, 250)
        c.expect_cmd("RSET", 250)

    def test_size_exceeded_while_receiving(self):
        for declared in ("", " SIZE=1000"):
            with self.subTest(declared=declared):
                c = self.relay_client()
                self.open_transaction(c, mail_args=declared)
                c.expect_cmd("DATA", 354)
                c.send(filler(MAX_SIZE + 100, self.token) + b".\r\n")
                c.expect(552, "5.3.4")
                c.expect_cmd("NOOP", 250)
                self.assert_nothing_queued_with(self.token)
                self.assert_can_still_queue(c)

    def test_size_limit_is_exact(self):
        c = self.relay_client()
        self.open_transaction(c)
        c.expect_cmd("DATA", 354)
        body = filler(MAX_SIZE, self.token)
        c.send(body + b".\r\n")
        qid = queued_id(c.expect(250))
        split_prefix(self.server.queue_cat(qid), body)
        self.open_transaction(c)
        c.expect_cmd("DATA", 354)
        c.send(body + b"y\r\n.\r\n")  # 3 octets over
        c.expect(552, "5.3.4")

    def test_size_exceeded_in_bdat(self):
        c = self.relay_client()
        self.open_transaction(c)
        c.send(b"BDAT %d LAST\r\n" % (MAX_SIZE + 100) + filler(MAX_SIZE + 100, self.token))
        c.expect(552, "5.3.4")
        c.expect_cmd("NOOP", 250)
        self.assert_nothing_queued_with(self.token)

    def test_too_many_recipients(self):
        c = self.relay_client()
        rcpts = ["r%d@remote.example" % i for i in range(MAX_RCPTS)]
        self.open_transaction(c, rcpts)
        c.expect_cmd("RCPT TO:<one-too-many@remote.example>", 452, "4.5.3")
        c.expect_cmd("DATA", 354)
        c.send(make_message(self.token) + b".\r\n")
        qid = queued_id(c.expect(250))
        self.assertEqual(sorted(self.server.queue_entry(qid).recipients), sorted(rcpts))

    # --- long lines -------------------------------------------------------------------------

    def test_long_command_line(self):
        c = self.relay_client()
        c.expect_cmd("NOOP " + "x" * 9995, 500, "5.5.2")
        c.expect_cmd("NOOP", 250)
        c.expect_cmd("MAIL FROM:<" + "a" * 10000 + "@example.com>", 500, "5.5.2")
        # the same line dribbled in pieces is refused once, and its tail is not a command
        c.send("NOOP " + "y" * 4000)
        time.sleep(0.1)
        c.send("z" * 3000)
        time.sleep(0.1)
        c.send("z" * 3000 + "\r\nNOOP\r\n")
        c.expect(500, "5.5.2")
        c.expect(250)
        self.assert_can_still_queue(c)

    def test_long_line_in_data(self):
        c = self.relay_client()
        self.open_transaction(c)
        c.expect_cmd("DATA", 354)
        c.send(make_message(self.token) + b"q" * 10000 + b"\r\nafter\r\n.\r\n")
        c.expect(554, "5.6.0")
        c.expect_cmd("NOOP", 250)
        self.assert_nothing_queued_with(self.token)
        self.assert_can_still_queue(c)

    # --- garbage and errors -----------------------------------------------------------------

    def test_binary_garbage(self):
        for seed in (1, 2, 3):
            with self.subTest(seed=seed):
                garbage = random.Random(seed).randbytes(65536)
                garbage += b"\x00\xff" * 64 + b"\r\n\xff\x00\r\n"
                c = SmtpClient(self.server.port("relay"))
                self.addCleanup(c.close)
                c.expect(220)
                try:
                    for i in range(0, len(garbage), 4096):
                        c.send(garbage[i:i + 4096])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server may hang up before all of it arrived
                codes = []
                while True:
                    code, lines = c.reply()
                    if code is None:
                        break
                    codes.append(code)
                self.assertTrue(codes, "no reply to garbage at all")
                self.assertTrue(all(400 <= x < 600 for x in codes), codes)
                # at most max_errors errors and the 421, then the server hung up (the tail
                # of the replies may be lost to the reset that our unread garbage causes)
                self.assertLessEqual(len(codes), MAX_ERRORS + 1, codes)
                self.assertTrue(codes[-1] == 421 or len(codes) < MAX_ERRORS + 1, codes)
        # garbage instead of a TLS handshake on the implicit-TLS port
        with socket.create_connection(("127.0.0.1", self.server.port("submissions")), 10) as s:
            try:
                s.sendall(random.Random(4).randbytes(8192))
            except (BrokenPipeError, ConnectionResetError):
                pass
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
        # garbage inside DATA is content: refused or queued, never a crash
        c = self.relay_client()
        self.open_transaction(c)
        c.expect_cmd("DATA", 354)
        c.send(random.Random(5).randbytes(20000) + b"\r\n.\r\n")
        code, lines = c.reply()
        self.assertIn(code, (250, 554), lines)
        # the daemon is alive and well
        self.assertTrue(self.server.alive(), self.server.log_tail())
        c = SmtpClient(self.server.port("relay"))
        self.addCleanup(c.close)
        c.expect(220, "ESMTP Porter")
        c.ehlo()
        self.assert_can_still_queue(c)

    def test_too_many_errors(self):
        c = self.relay_client()
        for _ in range(MAX_ERRORS - 1):
            c.expect_cmd("BOGUS", 500, "5.5.2")
        c.expect_cmd("BOGUS", 500)
        c.expect(421, "too many errors")
        self.assertTrue(c.closed())

    # --- STARTTLS injection -----------------------------------------------------------------

    def injection_log(self, source):
        m = self.server.wait_for_log(r"starttls-injection .*client=%s .*discarded=(\d+)"
                                     % re.escape(source))
        self.assertIsNotNone(m, "no starttls-injection log line")
        return int(m.group(1))

    def test_commands_pipelined_behind_starttls_are_discarded(self):
        source = "127.0.0.31"
        injected = b"EHLO evil.example\r\nMAIL FROM:<evil@example.com>\r\n"
        c = SmtpClient(self.server.port("submission"), source=source)
        self.addCleanup(c.close)
        c.expect(220)
        c.ehlo()
        c.send(b"STARTTLS\r\n" + injected)
        c.expect(220, "2.0.0")
        self.assertEqual(c.buf, b"", "plaintext replies after the STARTTLS reply")
        c.sock = client_tls_context().wrap_socket(c.sock)
        # the injected EHLO was not executed: the session knows no HELO
        c.expect_cmd("MAIL FROM:<alice@example.com>", 503, "send HELO/EHLO first")
        ehlo = "\n".join(c.ehlo())
        self.assertIn("AUTH PLAIN LOGIN", ehlo)
        self.assertEqual(self.injection_log(source), len(injected))

    def test_relay_transaction_pipelined_behind_starttls_is_discarded(self):
        source = "127.0.0.32"
        injected = (b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@remote.example>\r\n"
                    b"DATA\r\nSubject: injected\r\n\r\ninjected\r\n.\r\n")
        c = SmtpClient(self.server.port("relay"), source=source)
        self.addCleanup(c.close)
        c.expect(220)
        self.assertIn("STARTTLS", "\n".join(c.ehlo()))
        c.send(b"STARTTLS\r\n" + injected)
        c.expect(220)
        self.assertEqual(c.buf, b"")
        c.sock = client_tls_context().wrap_socket(c.sock)
        c.ehlo()
        c.expect_cmd("RCPT TO:<victim@remote.example>", 503, "need MAIL")
        c.expect_cmd("DATA", 503)
        self.assertEqual(self.injection_log(source), len(injected))
        self.assertNotIn("evil@example.com", [e.sender for e in self.server.queue_list()])

    # --- pipelining and chunking ------------------------------------------------------------

    def test_pipelined_transactions_answered_in_order(self):
        c = self.relay_client()
        ehlo = "\n".join(c.ehlo())
        self.assertIn("PIPELINING", ehlo)
        t1, t2 = uuid.uuid4().hex, uuid.uuid4().hex
        m1, m2 = make_message(t1), make_message(t2, body_lines=200)
        c.send(b"MAIL FROM:<one@internal.example>\r\n"
               b"RCPT TO:<a@remote.example>\r\n"
               b"RCPT TO:<not an address>\r\n"
               b"RCPT TO:<b@local.test>\r\n"
               b"DATA\r\n" + m1 + b".\r\n"
               b"RSET\r\n"
               b"MAIL FROM:<two@internal.example> BODY=8BITMIME\r\n"
               b"RCPT TO:<c@remote.example>\r\n"
               b"NOOP\r\n"
               b"DATA\r\n" + m2 + b".\r\n"
               b"QUIT\r\n")
        expected = [250, 250, 501, 250, 354, 250, 250, 250, 250, 250, 354, 250, 221]
        got = []
        ids = []
        for _ in expected:
            code, lines = c.reply()
            got.append(code)
            if code == 250 and "queued as" in lines[-1]:
                ids.append(queued_id(lines))
        self.assertEqual(got, expected)
        self.assertTrue(c.closed())
        self.assertEqual(len(ids), 2)
        e1, e2 = self.server.queue_entry(ids[0]), self.server.queue_entry(ids[1])
        self.assertEqual((e1.sender, sorted(e1.recipients)),
                         ("one@internal.example", ["a@remote.example", "b@local.test"]))
        self.assertEqual((e2.sender, e2.recipients), ("two@internal.example", ["c@remote.example"]))
        split_prefix(self.server.queue_cat(ids[0]), m1)
        split_prefix(self.server.queue_cat(ids[1]), m2)

    def test_bdat_two_chunks(self):
        c = self.relay_client()
        self.assertIn("CHUNKING", "\n".join(c.ehlo()))
        self.open_transaction(c)
        # BDAT content is raw: dots and CRLF.CRLF inside are just bytes
        chunk1 = make_message(self.token) + b".\r\n\r\n.\r\n..double\r\n"
        chunk2 = b"second chunk \x80\xff 8-bit\r\n.\r\n"
        c.send(b"BDAT %d\r\n" % len(chunk1) + chunk1)
        c.expect(250, "%d octets received" % len(chunk1))
        c.send(b"BDAT %d LAST\r\n" % len(chunk2) + chunk2)
        qid = queued_id(c.expect(250))
        split_prefix(self.server.queue_cat(qid), chunk1 + chunk2)

    def test_bdat_zero_last(self):
        c = self.relay_client()
        self.open_transaction(c)
        chunk = make_message(self.token, body_lines=50)
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        c.expect(250)
        qid = queued_id(c.expect_cmd("BDAT 0 LAST", 250, "queued as"))
        split_prefix(self.server.queue_cat(qid), chunk)

    def test_bdat_whole_transaction_in_one_write(self):
        c = self.relay_client()
        chunk = make_message(self.token)
        c.send(b"MAIL FROM:<app@internal.example>\r\nRCPT TO:<x@remote.example>\r\n"
               b"BDAT 10\r\n" + chunk[:10] + b"BDAT %d LAST\r\n" % (len(chunk) - 10) + chunk[10:]
               + b"QUIT\r\n")
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(250, "10 octets received")
        qid = queued_id(c.expect(250))
        c.expect(221)
        split_prefix(self.server.queue_cat(qid), chunk)


class StrictLimitsTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = PorterServer(
            "strict", roles=("relay",), tls=False,
            settings={"limits": {"idle_timeout": 2, "max_connections_per_ip": 2,
                                 "max_connections": 5, "bare_lf": "refuse"}})
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def connect(self, source, greeting=220):
        c = SmtpClient(self.server.port("relay"), source=source)
        self.addCleanup(c.close)
        lines = c.expect(greeting)
        return c, lines

    def test_bare_lf_refused_when_configured(self):
        token, smuggled = uuid.uuid4().hex, uuid.uuid4().hex
        c, _ = self.connect("127.0.0.1")
        c.ehlo()
        c.expect_cmd("MAIL FROM:<app@internal.example>", 250)
        c.expect_cmd("RCPT TO:<x@remote.example>", 250)
        c.expect_cmd("DATA", 354)
        c.send(smuggling_payload(token, smuggled, b"\n.\n"))
        c.expect(554, "bare LF")
        c.expect_cmd("QUIT", 221)
        self.assertEqual(self.server.messages_containing(smuggled.encode()), [])
        self.assertEqual(self.server.queue_list(), [])

    def test_connection_limits(self):
        self.assertTrue(self.server.wait_sessions_closed())
        a1, _ = self.connect("127.0.0.42")
        a2, _ = self.connect("127.0.0.42")
        _, lines = self.connect("127.0.0.42", greeting=421)
        self.assertIn("4.7.0", lines[-1])
        b1, _ = self.connect("127.0.0.43")  # another address is not limited by .42's count
        b2, _ = self.connect("127.0.0.44")
        b3, _ = self.connect("127.0.0.44")
        _, lines = self.connect("127.0.0.45", greeting=421)  # all 5 slots taken
        self.assertIn("4.3.2", lines[-1])
        a1.expect_cmd("QUIT", 221)
        a1.close()
        # the slot comes free once the server has seen the close
        deadline = time.monotonic() + 5
        while True:
            c = SmtpClient(self.server.port("relay"), source="127.0.0.42")
            self.addCleanup(c.close)
            code, lines = c.reply()
            if code == 220 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(code, 220, lines)

    def test_idle_timeout(self):
        # Another test's connections may still hold the 5 slots until the server sees them close.
        self.assertTrue(self.server.wait_sessions_closed())
        c, _ = self.connect("127.0.0.51")
        c.ehlo()
        start = time.monotonic()
        c.sock.settimeout(10)
        c.expect(421, "4.4.2")
        self.assertGreater(time.monotonic() - start, 1.5)
        self.assertTrue(c.closed())
        # also in the middle of DATA
        c, _ = self.connect("127.0.0.52")
        c.ehlo()
        c.expect_cmd("MAIL FROM:<app@internal.example>", 250)
        c.expect_cmd("RCPT TO:<x@local.test>", 250)
        c.expect_cmd("DATA", 354)
        c.send(b"Subject: half a message\r\n\r\nand then silence")
        c.sock.settimeout(10)
        c.expect(421, "4.4.2")
        self.assertTrue(c.closed())
        self.assertEqual(self.server.queue_list(), [])


if __name__ == "__main__":
    unittest.main()
