"""The crash test: concurrent clients, SIGKILL at a random moment, restart, and every message
that got a 250 must be in the queue with its full envelope and a byte-identical body.

Each round: start porter (on the same data dir as before), let CLIENTS threads send
messages in a loop (1 KiB..300 KiB, several recipients, DSN parameters, a unique token in
Subject and body; some by DATA with dot-stuffing, some by BDAT), SIGKILL porter after a
random delay, restart it, then check:
  - every message acknowledged with "250 ... queued as ID" is listed under that ID with its
    sender and every recipient, and `porter queue cat ID` ends with exactly the bytes the
    client meant (before dot-stuffing), after Porter's Received line;
  - every other queued message is one the clients attempted, complete and byte-identical
    (the batch is atomic: a message is whole or absent, never torn), and listed once.
The seed is printed; PORTER_CRASH_SEED=N repeats a run."""

import concurrent.futures
import os
import random
import re
import smtplib
import sys
import threading
import time
import unittest

from porter_fixture import PorterServer, PorterTestCase, SmtpClient, split_prefix

ROUNDS = 6
CLIENTS = 6
MIN_SIZE, MAX_SIZE = 1024, 300 * 1024
PAUSE = 0.04  # seconds, at most, between two messages of one client
DOMAINS = ["remote.example", "local.test", "elsewhere.example"]


class Sent:
    def __init__(self, token, sender, rcpts, data):
        self.token = token
        self.sender = sender
        self.rcpts = rcpts
        self.data = data  # the message as the client means it (unstuffed, CRLF lines)


def text_pool(rng, size):
    """Lines of printable ASCII, UTF-8 and leading dots (to exercise dot-stuffing); no line
    longer than 200 octets."""
    words = ["alpha", "beta", "gamma", ".dot", "..twodots", "caf\u00e9", "\u00fcber", "x" * 60,
             "=3D", "<tag>", "-- ", "From", "\t", "end."]
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(words) for _ in range(rng.randrange(0, 12)))
        if rng.random() < 0.1:
            line = "." + line
        b = line.encode()[:200] + b"\r\n"
        out.append(b)
        n += len(b)
    return b"".join(out)


class Client(threading.Thread):
    def __init__(self, index, server, seed, pool, stop, results, bdat):
        super().__init__(daemon=True)
        self.index = index
        self.port = server.port("relay")
        self.rng = random.Random(seed)
        self.pool = pool
        self.stop_event = stop
        self.results = results  # shared: {"acked": {qid: Sent}, "attempted": {token: Sent}}
        self.bdat = bdat
        self.counter = 0
        self.errors = []

    def new_message(self):
        # Applications pause between messages; this also keeps the number of messages (each
        # checked by one `porter queue cat`) within the test's time budget.
        time.sleep(self.rng.uniform(0, PAUSE))
        self.counter += 1
        token = "T%02d%05d%08x" % (self.index, self.counter, self.rng.getrandbits(32))
        sender = "sender%d@internal.example" % self.index
        rcpts = ["r%d-%s@%s" % (i, token.lower(), self.rng.choice(DOMAINS))
                 for i in range(self.rng.randrange(1, 6))]
        size = self.rng.randrange(MIN_SIZE, MAX_SIZE)
        start = self.rng.randrange(0, len(self.pool) - MAX_SIZE)
        body = self.pool[start:start + size]
        body = body[body.index(b"\n") + 1:body.rindex(b"\n") + 1]  # whole lines only
        data = (b"From: " + sender.encode() + b"\r\nTo: " + rcpts[0].encode()
                + b"\r\nSubject: crash " + token.encode()
                + b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                + token.encode() + b" begins\r\n" + body + token.encode() + b" ends\r\n")
        sent = Sent(token, sender, rcpts, data)
        with self.results["lock"]:
            self.results["attempted"][token] = sent
        return sent

    def acked(self, qid, sent):
        with self.results["lock"]:
            self.results["acked"][qid] = sent

    def run(self):
        while not self.stop_event.is_set():
            try:
                if self.bdat:
                    self.session_bdat()
                else:
                    self.session_data()
            except (OSError, smtplib.SMTPException, EOFError):
                time.sleep(0.02)  # killed under us: try again until told to stop
            except Exception as e:  # a bug in the test itself must not pass silently
                self.errors.append(repr(e))
                return

    def session_data(self):
        s = smtplib.SMTP("127.0.0.1", self.port, local_hostname="crash%d.test" % self.index,
                         timeout=20)
        try:
            s.ehlo()
            while not self.stop_event.is_set():
                sent = self.new_message()
                code, resp = s.mail(sent.sender, ["SIZE=%d" % len(sent.data), "BODY=8BITMIME",
                                                  "RET=HDRS", "ENVID=" + sent.token])
                if code != 250:
                    raise AssertionError("MAIL refused: %d %r" % (code, resp))
                for r in sent.rcpts:
                    code, resp = s.rcpt(r, ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;" + r])
                    if code != 250:
                        raise AssertionError("RCPT refused: %d %r" % (code, resp))
                code, resp = s.data(sent.data)
                if code == 250:
                    m = re.search(rb"queued as ([0-9A-Z]{16})", resp)
                    if not m:
                        raise AssertionError("250 without a queue ID: %r" % resp)
                    self.acked(m.group(1).decode(), sent)
                elif code != 421:
                    raise AssertionError("DATA refused: %d %r" % (code, resp))
        finally:
            s.close()

    def session_bdat(self):
        c = SmtpClient(self.port, timeout=20)
        try:
            if c.reply()[0] != 220:
                raise EOFError
            c.send("EHLO crash%d.test\r\n" % self.index)
            if c.reply()[0] != 250:
                raise EOFError
            while not self.stop_event.is_set():
                sent = self.new_message()
                cut = self.rng.randrange(1, len(sent.data))
                # the whole transaction in one write: MAIL, RCPTs, two BDAT chunks
                wire = b"MAIL FROM:<%s> RET=FULL ENVID=%s\r\n" % (sent.sender.encode(),
                                                                    sent.token.encode())
                for r in sent.rcpts:
                    wire += b"RCPT TO:<%s> NOTIFY=DELAY\r\n" % r.encode()
                wire += b"BDAT %d\r\n" % cut + sent.data[:cut]
                wire += b"BDAT %d LAST\r\n" % (len(sent.data) - cut) + sent.data[cut:]
                c.send(wire)
                for _ in range(1 + len(sent.rcpts) + 1):
                    code, lines = c.reply()
                    if code != 250:
                        raise EOFError
                code, lines = c.reply()
                if code is None:
                    raise EOFError
                if code != 250:
                    raise AssertionError("BDAT LAST refused: %r" % lines)
                m = re.search(r"queued as ([0-9A-Z]{16})", lines[-1])
                if not m:
                    raise AssertionError("250 without a queue ID: %r" % lines)
                self.acked(m.group(1), sent)
        finally:
            c.close()


class CrashTest(PorterTestCase):
    def test_sigkill_loses_no_acknowledged_message(self):
        seed = int(os.environ.get("PORTER_CRASH_SEED", random.SystemRandom().randrange(1 << 30)))
        sys.stderr.write("\ncrash test seed %d (PORTER_CRASH_SEED=%d repeats it)\n" % (seed, seed))
        rng = random.Random(seed)
        pool = text_pool(random.Random(seed + 1), 2 * MAX_SIZE)

        server = PorterServer("crash", roles=("relay",), tls=False,
                              settings={"limits": {"max_message_size": 1 << 20}})
        self.addCleanup(server.cleanup)
        server.start()

        results = {"lock": threading.Lock(), "acked": {}, "attempted": {}}
        verified = set()  # IDs whose bodies were compared in an earlier round
        # a distinct kill point for every round, spread over 0.3 .. 3 s
        delays = [0.3 + (2.7 / ROUNDS) * (i + rng.random()) for i in range(ROUNDS)]
        rng.shuffle(delays)
        for rnd, delay in enumerate(delays):
            stop = threading.Event()
            clients = [Client(i, server, rng.getrandbits(32), pool, stop, results,
                              bdat=(i == 0)) for i in range(CLIENTS)]
            before = len(results["acked"])
            for c in clients:
                c.start()
            time.sleep(delay)
            server.kill()
            stop.set()
            for c in clients:
                c.join(30)
            self.assertEqual([c.index for c in clients if c.is_alive()], [],
                             "client threads hang")
            self.assertEqual([e for c in clients for e in c.errors], [])
            new = len(results["acked"]) - before
            sys.stderr.write("round %d: SIGKILL after %.2f s, %d messages acknowledged\n"
                             % (rnd, delay, new))
            self.assertGreater(new, 0, "round %d: nothing acknowledged before the kill" % rnd)

            server.start()  # same data dir, same ports
            t0 = time.monotonic()
            unacked = self.verify(server, results, verified)
            sys.stderr.write("round %d: verified in %.1f s; %d queued without a 250 seen "
                             "(killed between commit and reply)\n"
                             % (rnd, time.monotonic() - t0, unacked))
        self.assertGreaterEqual(len(verified), ROUNDS)

    def verify(self, server, results, verified):
        entries = server.queue_list()
        listed = {}
        for e in entries:
            self.assertNotIn(e.id, listed, "ID listed twice")
            listed[e.id] = e
        acked = dict(results["acked"])
        for qid, sent in acked.items():
            self.assertIn(qid, listed, "acknowledged message %s (%s) lost" % (qid, sent.token))
            self.assertEqual(listed[qid].sender, sent.sender, qid)
            self.assertEqual(listed[qid].recipients, sent.rcpts, qid)
        # bodies of every message not checked in an earlier round: those acknowledged since,
        # and those never acknowledged (the kill fell between commit and reply)
        to_cat = [qid for qid in listed if qid not in verified]

        def cat(qid):
            return qid, server.queue_cat(qid)

        attempted = results["attempted"]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            for qid, stored in pool.map(cat, to_cat):
                if qid in acked:
                    sent = acked[qid]
                else:
                    m = re.search(rb"\r\nSubject: crash (\w+)\r\n", stored)
                    self.assertIsNotNone(m, "queued message %s is not one the clients sent" % qid)
                    sent = attempted.get(m.group(1).decode())
                    self.assertIsNotNone(sent, "unknown token in %s" % qid)
                    self.assertEqual((listed[qid].sender, listed[qid].recipients),
                                     (sent.sender, sent.rcpts), qid)
                prefix = split_prefix(stored, sent.data)
                self.assertTrue(prefix.startswith(b"Received: from "), prefix)
                self.assertEqual(prefix.count(b"\r\n") - prefix.count(b"\r\n\t"), 1, prefix)
        # the show view carries the same envelope (spot check, it is one process per ID)
        for qid in list(acked)[-3:]:
            shown = server.queue_show(qid)
            self.assertEqual(shown["from"], acked[qid].sender)
            self.assertEqual([a for a, _ in shown["to"]], acked[qid].rcpts)
        verified.update(to_cat)
        return len([qid for qid in to_cat if qid not in acked])


if __name__ == "__main__":
    unittest.main()
