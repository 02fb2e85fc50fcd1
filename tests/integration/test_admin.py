"""The admin HTTP API and the `porter` CLI verbs that are its clients, against a running
daemon: queue list (filters), summary, show, cat, trace, hold/release, delete, bounce,
flush/retry-now, route explain, the socket's mode and the TCP listener's bearer token,
/metrics (parsed with prometheus_client) and JSON logs.

A dnslib server on 127.0.0.1 (tests/dns/fake_dns_server.py) gives every test domain its MX
on 127.0.0.2, where an aiosmtpd receiver (delivery_support.Receiver) takes the mail; it
answers 451 or 550 to the senders a test names, so mail can be kept deferred as long as a
test needs. two.test has two MX hosts of different preference (listed worst first in the
zone) for route explain. Mail enters porter on its relay listener from 127.0.0.1 (trusted).
"""

import base64
import json
import os
import re
import stat
import tempfile
import time
import unittest
import uuid

from prometheus_client.parser import text_string_to_metric_families

from delivery_support import (DnsServer, Receiver, Dsn, common_port, mx_zone, submit,
                              wait_until)
from porter_fixture import (PorterServer, PorterTestCase, SmtpClient, free_port,
                            header_names, make_message, parse_queue_list, parse_queue_show,
                            run_porter, split_prefix)

MX_IP = "127.0.0.2"
MX2_IP = "127.0.0.3"
SINK_DOMAINS = ["sink.test", "lista.test", "listb.test", "summary1.test", "summary2.test",
                "flusha.test", "flushb.test", "hold.test", "msink.test", "mbounce.test",
                "mdefer.test"]
PASSWORDS = {"alice": "alice-Admin-Pw-1"}
USERS = [("alice", PASSWORDS["alice"], ["alice@local.test"])]
# A retry schedule far longer than any test: deferred mail stays deferred unless flushed.
SLOW_RETRY = [60, 60]

ENV = {}


def setUpModule():
    mx = {d: [(10, "mxa.test")] for d in SINK_DOMAINS}
    # Worst preference first: the answer's order must not decide the hops' order.
    mx["two.test"] = [(20, "mxb.test"), (10, "mxa.test")]
    ENV["dns"] = DnsServer(mx_zone(mx, {"mxa.test": MX_IP, "mxb.test": MX2_IP})).start()
    ENV["port"] = common_port([MX_IP])
    ENV["rx"] = Receiver("mxa.test", MX_IP, ENV["port"]).start()


def tearDownModule():
    if "rx" in ENV:
        ENV["rx"].stop()
    if "dns" in ENV:
        ENV["dns"].stop()


def delivering_porter(name, retry=SLOW_RETRY, roles=("relay",), **settings):
    delivery = {"enabled": True, "remote_port": ENV["port"], "dns_servers": [ENV["dns"].address],
                "retry": retry, "connect_timeout": 3, "command_timeout": 3}
    all_settings = {"delivery": delivery, "relay": {"catch_all": ""}}
    for section, values in settings.items():
        all_settings.setdefault(section, {}).update(values)
    server = PorterServer(name, roles=roles, tls="submission" in roles, settings=all_settings,
                          users=USERS)
    # The daemon logs to a file (so that `queue trace` has lines): the fixture's log file.
    server.settings.setdefault("log", {})["file"] = server.log_path
    return server


def mailbox_uids(server, user, box="INBOX"):
    """UIDs in a user's mailbox, read with `porter mailbox list` (retried: a read-only open
    can lose a race with the daemon's compaction)."""
    for _ in range(20):
        r = server.cli("mailbox", "list", user, box, check=False)
        if r.returncode == 0:
            return [int(m.group(1)) for m in re.finditer(rb"^\s*(\d+)\s+\d+\s", r.stdout, re.M)]
        if b"has no mailbox" in r.stderr:
            return []
        time.sleep(0.1)
    raise AssertionError("porter mailbox list: %s" % r.stderr.decode())


class AdminCase(PorterTestCase):
    porter = None

    def setUp(self):
        self.token = uuid.uuid4().hex[:12]
        self.sender = "s%s@sender.example" % self.token
        self.rx = ENV["rx"]

    def refuse(self, reply, sender=None, stage="RCPT", **conditions):
        """The receiver answers `reply` to this test's sender until the rule is removed."""
        rule = self.rx.add_rule(stage, reply, sender=sender or self.sender, **conditions)
        self.addCleanup(self.rx.remove_rule, rule)
        return rule

    def send(self, rcpt, sender=None, token=None, porter=None):
        sender = sender or self.sender
        msg = make_message(token or self.token, sender=sender, to=rcpt)
        return submit(porter or self.porter, sender, [rcpt], msg), msg

    def listed(self, *filters, porter=None):
        """IDs `porter queue list --json` gives with these filters, in order."""
        out = (porter or self.porter).cli_json("queue", "list", *filters)
        self.assertEqual(out["matched"], len(out["messages"]))
        return [m["id"] for m in out["messages"]]

    def show_json(self, qid, porter=None):
        return (porter or self.porter).cli_json("queue", "show", qid)

    def wait_deferred(self, qid, porter=None):
        p = porter or self.porter

        def deferred():
            status, body = p.api("GET", "/v1/queue/" + qid)
            if status != 200:
                return None
            m = json.loads(body)
            return m if m["state"] == "deferred" and m["recipients"][0]["attempts"] >= 1 else None
        m = wait_until(deferred, 15, 0.1)
        self.assertTrue(m, "%s never deferred: %r" % (qid, p.api("GET", "/v1/queue/" + qid)))
        return m

    def wait_received(self, token, count=1, timeout=10):
        ok = wait_until(lambda: len(self.rx.messages(token)) >= count, timeout)
        self.assertTrue(ok, "the sink got %d of %d messages with %s"
                        % (len(self.rx.messages(token)), count, token))
        return self.rx.messages(token)

    def assert_gone(self, qid, porter=None):
        p = porter or self.porter
        r = p.cli("queue", "show", qid, check=False)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(b"HTTP 404", r.stderr)
        self.assertEqual(p.api("GET", "/v1/queue/" + qid)[0], 404)


class QueueVerbsTest(AdminCase):
    @classmethod
    def setUpClass(cls):
        cls.porter = delivering_porter("admin").start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.cleanup()

    def test_list_filters_human_and_json(self):
        other = "o%s@other.example" % self.token
        self.refuse("451 4.7.1 Greylisted-%s try later" % self.token)
        self.refuse("451 4.3.0 Busy-%s" % self.token, sender=other)
        old, _ = self.send("a@lista.test")
        time.sleep(3.5)
        new, _ = self.send("b@listb.test")
        held, _ = self.send("c@lista.test", sender=other)
        for qid in (old, new, held):
            self.wait_deferred(qid)
        self.porter.cli("queue", "hold", held)
        # First, while `new` is surely younger than 3 s.
        self.assertEqual(self.listed("--sender", self.token, "--older-than", "3s"), [old])
        self.assertEqual(self.listed("--sender", self.token, "--newer-than", "3s"), [new, held])

        self.assertEqual(self.listed("--sender", self.sender), [old, new])
        self.assertEqual(self.listed("--sender", other), [held])
        self.assertEqual(self.listed("--sender", self.token), [old, new, held])
        self.assertEqual(self.listed("--sender", self.token, "--domain", "lista.test"),
                         [old, held])
        self.assertEqual(self.listed("--sender", self.token, "--domain", "listb.test"), [new])
        self.assertEqual(self.listed("--sender", self.token, "--state", "deferred"), [old, new])
        self.assertEqual(self.listed("--sender", self.token, "--state", "held"), [held])
        self.assertEqual(self.listed("--sender", self.token, "--state", "active"), [])
        self.assertEqual(self.listed("--error", "Greylisted-" + self.token), [old, new])
        self.assertEqual(self.listed("--error", "busy-" + self.token), [held])
        self.assertEqual(self.listed("--sender", self.token, "--limit", "1"), [old])
        self.assertEqual(self.listed("--recipient", "b@listb"), [new])

        # The JSON form carries the reply and the states.
        m = self.porter.cli_json("queue", "list", "--sender", self.sender)["messages"][0]
        self.assertEqual(m["sender"], self.sender)
        self.assertEqual(m["state"], "deferred")
        self.assertEqual(m["recipients"][0]["address"], "a@lista.test")
        self.assertIn("Greylisted-" + self.token, m["recipients"][0]["last_reply"])
        self.assertEqual(m["recipients"][0]["attempts"], 1)

        # The human form: one line per message, the last reply under it.
        text = self.porter.cli("queue", "list", "--sender", self.token).stdout.decode()
        entries = parse_queue_list(text)
        self.assertEqual([e.id for e in entries], [old, new, held])
        self.assertEqual([e.state for e in entries], ["deferred", "deferred", "held"])
        self.assertEqual(entries[0].sender, self.sender)
        self.assertEqual(entries[0].recipients, ["a@lista.test"])
        self.assertIn("Greylisted-" + self.token, entries[0].replies["a@lista.test"])
        self.assertTrue(text.rstrip().endswith("3 messages"), text)
        text = self.porter.cli("queue", "list", "--error", "Busy-" + self.token).stdout.decode()
        self.assertEqual([e.id for e in parse_queue_list(text)], [held])

        # Bad filters are refused, naming the option's parameter.
        for args, word in ((("--state", "frozen"), b"state"), (("--older-than", "5"), b"min_age"),
                           (("--limit", "0"), b"limit")):
            r = self.porter.cli("queue", "list", *args, check=False)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(word, r.stderr)
            self.assertIn(b"HTTP 400", r.stderr)

    def test_summary_counts_per_domain(self):
        self.refuse("451 4.7.1 later")
        ids = [self.send(r)[0] for r in ("a@summary1.test", "b@summary1.test", "c@summary2.test")]
        for qid in ids:
            self.wait_deferred(qid)
        s = self.porter.cli_json("queue", "summary")
        rows = {d["domain"]: d for d in s["domains"]}
        self.assertEqual(rows["summary1.test"]["total"], 2)
        self.assertEqual(rows["summary1.test"]["buckets"][0], 2)  # all under 5 minutes old
        self.assertEqual(sum(rows["summary1.test"]["buckets"]), 2)
        self.assertEqual(rows["summary2.test"]["total"], 1)
        self.assertEqual(s["total"]["domain"], "TOTAL")
        self.assertGreaterEqual(s["total"]["total"], 3)
        self.assertEqual(s["total"]["total"], sum(d["total"] for d in s["domains"]))
        listed = self.porter.cli_json("queue", "list")
        self.assertEqual(s["messages"], listed["matched"])
        self.assertEqual(sum(s["by_state"].values()), s["messages"])
        self.assertEqual(len(s["buckets"]), 8)

        text = self.porter.cli("queue", "summary").stdout.decode()
        self.assertRegex(text, r"(?m)^summary1\.test\s+2\s+2(\s+0){7}$")
        self.assertRegex(text, r"(?m)^summary2\.test\s+1\s+1(\s+0){7}$")
        self.assertRegex(text, r"(?m)^TOTAL\s+\d+")
        self.assertRegex(text, r"(?m)^%d messages \(active \d+, deferred \d+, held \d+\)"
                         % s["messages"])

    def test_show_cat_trace(self):
        self.refuse("451 4.7.1 Greylisted-%s" % self.token)
        qid, sent = self.send("show@sink.test")
        self.wait_deferred(qid)

        shown = self.show_json(qid)
        self.assertEqual(shown["id"], qid)
        self.assertEqual(shown["sender"], self.sender)
        self.assertEqual(shown["state"], "deferred")
        self.assertEqual(shown["envelope"]["listener"], "relay")
        self.assertEqual(shown["envelope"]["client_ip"], "127.0.0.1")
        self.assertEqual(shown["envelope"]["helo"], "injector.test")
        r = shown["recipients"][0]
        self.assertEqual((r["address"], r["state"], r["attempts"]),
                         ("show@sink.test", "pending", 1))
        self.assertIn("Greylisted-" + self.token, r["last_reply"])
        self.assertGreater(shown["next_attempt_ms"], time.time() * 1000 + 30_000,
                           "the retry is not about a minute away")
        self.assertIn("Subject: test %s" % self.token, shown["headers"])

        human = parse_queue_show(self.porter.cli("queue", "show", qid).stdout.decode())
        self.assertEqual((human["id"], human["state"], human["from"]),
                         (qid, "deferred", self.sender))
        self.assertEqual(human["to"][0][0], "show@sink.test")
        self.assertRegex(human["to"][0][1], r"^pending attempts=1 last=\"451 .*Greylisted-")
        self.assertIn("listener=relay", human["client"])
        self.assertIn("Subject: test %s" % self.token, human["headers"])

        stored = self.porter.cli("queue", "cat", qid).stdout
        prefix = split_prefix(stored, sent)
        self.assertEqual(header_names(prefix), ["received"])
        self.assertIn(qid.encode(), prefix)
        status, body = self.porter.api("GET", "/v1/queue/%s/message" % qid)
        self.assertEqual((status, body), (200, stored))

        trace = self.porter.cli("queue", "trace", qid).stdout.decode().splitlines()
        self.assertRegex(trace[0], r" queued id=%s .*from=<%s>" % (qid, re.escape(self.sender)))
        self.assertTrue(any(re.search(r" delivery id=%s .*status=deferred" % qid, l)
                            for l in trace), trace)
        self.assertTrue(all(qid in l for l in trace), trace)
        # Asked again: the same lines first (the admin API's own access lines that name the
        # ID may follow).
        self.assertEqual(self.porter.cli_json("queue", "trace", qid)["lines"][:len(trace)], trace)

    def test_delete(self):
        rule = self.refuse("451 4.7.1 later")
        qid, _ = self.send("del@sink.test")
        self.wait_deferred(qid)
        out = self.porter.cli("queue", "delete", qid).stdout.decode()
        self.assertEqual(out.strip(), "%s: deleted" % qid)
        self.assert_gone(qid)
        self.assertNotIn(qid, self.listed())
        r = self.porter.cli("queue", "cat", qid, check=False)
        self.assertEqual((r.returncode, r.stdout), (1, b""))
        r = self.porter.cli("queue", "delete", qid, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"HTTP 404", r.stderr)
        # The sink would take it now: nothing is left to send.
        self.rx.remove_rule(rule)
        self.porter.cli("queue", "flush")
        time.sleep(1.5)
        self.assertEqual(self.rx.messages(self.token), [])
        self.assertRegex(self.porter.log_text(), r" delete id=%s by=admin" % qid)
        self.assertNotRegex(self.porter.log_text(), r" dsn id=%s" % qid)

    def test_bounce_sends_dsn_to_local_sender(self):
        # A plus-address of alice: the DSN is delivered into alice's INBOX.
        sender = "alice+%s@local.test" % self.token
        rule = self.refuse("451 4.7.1 later", sender=sender)
        qid, _ = self.send("bounce@sink.test", sender=sender)
        self.wait_deferred(qid)
        before = mailbox_uids(self.porter, "alice")
        reason = "withdrawn-by-admin-%s" % self.token
        out = self.porter.cli("queue", "bounce", qid, "--reason", reason).stdout.decode()
        self.assertEqual(out.strip(), "%s: bounced (1 recipients failed)" % qid)
        self.assertTrue(wait_until(lambda: self.porter.api("GET", "/v1/queue/" + qid)[0] == 404),
                        "bounced message still queued")
        ok = wait_until(lambda: len(mailbox_uids(self.porter, "alice")) == len(before) + 1, 10)
        after = mailbox_uids(self.porter, "alice")
        self.assertTrue(ok, "no DSN in alice's INBOX: %r -> %r" % (before, after))
        uid = max(set(after) - set(before))
        data = self.porter.cli("mailbox", "cat", "alice", "INBOX", str(uid)).stdout
        dsn = Dsn(data)
        self.assertEqual(dsn.msg.get_content_type(), "multipart/report")
        self.assertEqual(len(dsn.recipients), 1, dsn.recipients)
        self.assertEqual(dsn.recipients[0]["action"], "failed")
        self.assertIn("bounce@sink.test", dsn.recipients[0]["final-recipient"])
        self.assertIn(reason, data.decode("utf-8", "replace"))
        self.assertIn(self.token.encode(), dsn.returned_bytes())
        self.rx.remove_rule(rule)
        self.porter.cli("queue", "flush")
        time.sleep(1)
        self.assertEqual(self.rx.messages(self.token), [], "a bounced message was delivered")
        # A second bounce finds nothing.
        r = self.porter.cli("queue", "bounce", qid, check=False)
        self.assertEqual(r.returncode, 1)

    def test_flush_and_retry_now_skip_the_backoff(self):
        rule = self.refuse("451 4.7.1 later")
        first, _ = self.send("one@sink.test", token=self.token + "-1")
        second, _ = self.send("two@sink.test", token=self.token + "-2")
        for qid in (first, second):
            m = self.wait_deferred(qid)
            self.assertGreater(m["next_attempt_ms"] - time.time() * 1000, 30_000)
        self.rx.remove_rule(rule)
        time.sleep(1)
        self.assertEqual(self.rx.messages(self.token), [], "retried before its backoff")

        t0 = time.monotonic()
        out = self.porter.cli("queue", "retry-now", first).stdout.decode()
        self.assertEqual(out.strip(), "%s: due now" % first)
        self.wait_received(self.token + "-1", timeout=10)
        self.assertLess(time.monotonic() - t0, 10)
        self.assert_gone(first)
        self.assertEqual(self.rx.messages(self.token + "-2"), [])

        out = self.porter.cli("queue", "flush").stdout.decode()
        m = re.match(r"^(\d+) deferred message\(s\) due now$", out.strip())
        self.assertTrue(m and int(m.group(1)) >= 1, out)
        self.wait_received(self.token + "-2", timeout=10)
        self.assertTrue(wait_until(lambda: self.porter.api("GET", "/v1/queue/" + second)[0] == 404))
        shown = self.porter.log_text()
        self.assertRegex(shown, r"delivery id=%s to=<two@sink\.test> .*status=sent" % second)

    def test_flush_domain(self):
        rule = self.refuse("451 4.7.1 later")
        a, _ = self.send("x@flusha.test", token=self.token + "-a")
        b, _ = self.send("x@flushb.test", token=self.token + "-b")
        for qid in (a, b):
            self.wait_deferred(qid)
        self.rx.remove_rule(rule)
        out = self.porter.cli("queue", "flush", "--domain", "flusha.test").stdout.decode()
        self.assertEqual(out.strip(), "1 deferred message(s) due now")
        self.wait_received(self.token + "-a")
        time.sleep(1.5)
        self.assertEqual(self.rx.messages(self.token + "-b"), [], "flush --domain flushed more")
        self.assertEqual(self.show_json(b)["state"], "deferred")
        self.assertEqual(self.porter.cli_json("queue", "flush", "--domain", "flushb.test"),
                         {"moved": 1})
        self.wait_received(self.token + "-b")
        # Nothing deferred left for that domain.
        self.assertEqual(self.porter.cli_json("queue", "flush", "--domain", "flushb.test"),
                         {"moved": 0})

    def test_route_explain(self):
        j = self.porter.cli_json("route", "explain", "--from", "app@sender.example",
                                 "--to", "user@two.test")
        self.assertEqual((j["route"], j["from"], j["to"]),
                         ("mx", "app@sender.example", "user@two.test"))
        self.assertEqual(j["mx"]["outcome"], "ok")
        hops = [(h["host"], h["ip"], h["preference"], h["port"]) for h in j["mx"]["hops"]]
        self.assertEqual(hops, [("mxa.test", MX_IP, 10, ENV["port"]),
                                ("mxb.test", MX2_IP, 20, ENV["port"])])
        self.assertEqual(j["limits"]["retry_s"], SLOW_RETRY)
        self.assertEqual(j["tls_policy"], "may")
        self.assertFalse(j["dkim"]["signs"])
        text = self.porter.cli("route", "explain", "--from", "app@sender.example",
                               "--to", "user@two.test").stdout.decode()
        self.assertIn("from <app@sender.example> to <user@two.test>: mx", text)
        self.assertRegex(text, r"1\. mxa\.test \[127\.0\.0\.2\]:%d preference 10\n"
                         r"\s+2\. mxb\.test \[127\.0\.0\.3\]:%d preference 20"
                         % ((ENV["port"],) * 2))

        j = self.porter.cli_json("route", "explain", "--to", "alice+tag@local.test")
        self.assertEqual(j["route"], "local")
        self.assertEqual([b["user"] for b in j["mailboxes"]], ["alice"])
        self.assertNotIn("mx", j)
        text = self.porter.cli("route", "explain", "--to", "alice@local.test").stdout.decode()
        self.assertIn(": local", text)
        self.assertIn("mailbox of alice", text)

        j = self.porter.cli_json("route", "explain", "--to", "nobody-here@local.test")
        self.assertEqual(j["route"], "refused")
        self.assertTrue(j["reply"].startswith("550 5.1.1"), j)
        text = self.porter.cli("route", "explain", "--to", "nobody-here@local.test").stdout.decode()
        self.assertIn("refused at RCPT: 550 5.1.1", text)

        j = self.porter.cli_json("route", "explain", "--to", "user@no-such-domain.test")
        self.assertEqual((j["route"], j["mx"]["outcome"], j["mx"]["hops"]),
                         ("mx", "no-such-domain", []))
        self.assertIn("NXDOMAIN", j["mx"]["detail"])
        text = self.porter.cli("route", "explain",
                               "--to", "user@no-such-domain.test").stdout.decode()
        self.assertIn("MX lookup: no-such-domain", text)

        r = self.porter.cli("route", "explain", "--to", "not an address", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"HTTP 400", r.stderr)

    def test_status_socket_and_api_errors(self):
        st = os.stat(self.porter.admin_socket())
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        j = self.porter.cli_json("status")
        self.assertEqual(j["pid"], self.porter.proc.pid)
        self.assertEqual(j["config"], self.porter.config_path)
        self.assertEqual(j["hostname"], "mx.porter.test")
        text = self.porter.cli("status").stdout.decode()
        self.assertIn("porter running: pid %d" % self.porter.proc.pid, text)

        status, body = self.porter.api("GET", "/v1/nowhere")
        self.assertEqual(status, 404)
        self.assertIn("error", json.loads(body))
        self.assertEqual(self.porter.api("DELETE", "/v1/status")[0], 405)
        self.assertEqual(self.porter.api("GET", "/v1/queue/not-an-id")[0], 404)
        self.assertEqual(self.porter.api("GET", "/v1/queue/0000000000000000")[0], 404)
        status, body = self.porter.api("GET", "/v1/queue?colour=red")
        self.assertEqual(status, 400)
        self.assertIn("colour", json.loads(body)["error"])
        self.assertEqual(self.porter.api("GET", "/v1/route")[0], 400)

    def test_bad_usage_exits_2(self):
        # mta/admin_cli.h: "Exit status: 0 done, 1 refused or failed, 2 bad usage".
        for args in (("queue",), ("queue", "frobnicate"), ("queue", "show"),
                     ("queue", "list", "--bogus"), ("route", "explain", "--from", "a@b.example")):
            r = self.porter.cli(*args, check=False)
            self.assertIn(b"usage: porter", r.stderr, args)
            self.assertEqual(r.returncode, 2, args)


class HoldTest(AdminCase):
    """A short retry schedule, so that a held message's retry time passes during the test."""

    @classmethod
    def setUpClass(cls):
        cls.porter = delivering_porter("admin-hold", retry=[1, 1, 1]).start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.cleanup()

    def test_held_mail_waits_until_released(self):
        rule = self.refuse("451 4.7.1 later")
        qid, _ = self.send("held@hold.test")
        self.wait_deferred(qid)
        out = self.porter.cli("queue", "hold", qid).stdout.decode()
        self.assertEqual(out.strip(), "%s: held" % qid)
        self.rx.remove_rule(rule)
        attempts = self.show_json(qid)["recipients"][0]["attempts"]
        self.assertEqual(self.listed("--state", "held"), [qid])
        self.assertNotIn("next_attempt_ms", self.show_json(qid))

        # Its retry time passes (1 s), and every kind of flush is asked for: it stays.
        time.sleep(2.5)
        self.porter.cli("queue", "flush")
        self.porter.cli("queue", "flush", "--domain", "hold.test")
        self.porter.cli("queue", "retry-now", qid, check=False)
        time.sleep(2)
        self.assertEqual(self.rx.messages(self.token), [], "a held message was delivered")
        shown = self.show_json(qid)
        self.assertEqual(shown["state"], "held")
        self.assertEqual(shown["recipients"][0]["attempts"], attempts)
        out = self.porter.cli("queue", "hold", qid).stdout.decode()
        self.assertEqual(out.strip(), "%s: held (already)" % qid)

        out = self.porter.cli("queue", "release", qid).stdout.decode()
        self.assertEqual(out.strip(), "%s: released" % qid)
        got = self.wait_received(self.token)
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0].rcpt_tos, ["held@hold.test"])
        self.assertTrue(wait_until(lambda: self.porter.api("GET", "/v1/queue/" + qid)[0] == 404))
        r = self.porter.cli("queue", "release", qid, check=False)
        self.assertEqual(r.returncode, 1)


class TokenTest(AdminCase):
    def test_tcp_listener_needs_the_token(self):
        port = free_port()
        server = PorterServer("admin-token", roles=("relay",), tls=False)
        self.addCleanup(server.cleanup)
        token = "t-" + uuid.uuid4().hex
        token_file = os.path.join(server.dir, "admin-token")
        with open(token_file, "w") as f:
            f.write(token + "\n")
        server.settings["admin"] = {"listen": "127.0.0.1:%d" % port, "token_file": token_file}
        server.start()

        status, body = server.api("GET", "/v1/status", tcp_port=port)
        self.assertEqual(status, 401, body)
        self.assertIn("Bearer", json.loads(body)["error"])
        self.assertEqual(server.api("GET", "/v1/status", token="x" * 40, tcp_port=port)[0], 401)
        self.assertEqual(server.api("GET", "/metrics", tcp_port=port)[0], 401)
        status, body = server.api("GET", "/v1/status", token=token, tcp_port=port)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["pid"], server.proc.pid)
        self.assertEqual(server.api("GET", "/metrics", token=token, tcp_port=port)[0], 200)
        # The socket is guarded by its file mode: no token needed there (the CLI's way in).
        self.assertEqual(server.api("GET", "/v1/status")[0], 200)
        self.assertEqual(server.cli_json("status")["pid"], server.proc.pid)

    def test_check_config_refuses_bad_admin_listen(self):
        # Not loopback, or nothing `porter serve` could bind: refused by check-config already,
        # naming the file, the line and the key.
        with tempfile.TemporaryDirectory() as tmp:
            token_file = os.path.join(tmp, "token")
            with open(token_file, "w") as f:
                f.write(uuid.uuid4().hex + "\n")
            for listen in ("0.0.0.0:8025", "192.0.2.1:8025", "[::]:8025", "127.0.0.1:99999",
                           "127.0.0.1:0", "127.example.com:8025"):
                with self.subTest(listen):
                    path = os.path.join(tmp, "porter.toml")
                    with open(path, "w") as f:
                        f.write('[[listener]]\nrole = "relay"\naddress = "127.0.0.1"\n'
                                'port = 2500\n\n[admin]\ntoken_file = "%s"\nlisten = "%s"\n'
                                % (token_file, listen))
                    r = run_porter(["check-config", path])
                    err = r.stderr.decode()
                    self.assertNotEqual(r.returncode, 0, r.stdout)
                    self.assertIn("%s:8: admin.listen: must be a loopback" % path, err)


def scrape(server):
    status, body = server.api("GET", "/metrics")
    assert status == 200, body
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def sample(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


class MetricsTest(AdminCase):
    def test_counters_follow_what_happened(self):
        porter = delivering_porter("admin-metrics", roles=("relay", "submission")).start()
        self.addCleanup(porter.cleanup)
        before = scrape(porter)
        # A listener's series appear at its first connection.
        self.assertIn(sample(before, "porter_messages_accepted_total", listener="relay"), (None, 0))
        self.assertEqual(sample(before, "porter_queue_messages"), 0)

        # Mail from alice (local) so that the bounce's DSN is delivered locally.
        sender = "alice+%s@local.test" % self.token
        self.refuse("550 5.1.1 no such user", sender=sender, domain="mbounce.test")
        self.refuse("451 4.7.1 later", sender=sender, domain="mdefer.test")
        ids = [self.send(r, sender=sender, porter=porter)[0]
               for r in ("a@msink.test", "b@msink.test", "c@msink.test", "d@mbounce.test",
                         "e@mdefer.test")]
        self.wait_received(self.token, 3)
        self.wait_deferred(ids[4], porter=porter)
        self.assertTrue(wait_until(lambda: len(mailbox_uids(porter, "alice")) == 1, 10),
                        "no DSN delivered to alice")

        # One wrong password on submission, after STARTTLS (smtplib's login() would try
        # each mechanism in turn: two failures).
        with SmtpClient(porter.port("submission")) as c:
            c.expect(220)
            c.ehlo()
            c.starttls()
            c.ehlo()
            plain = base64.b64encode(b"\0alice\0not-the-password").decode()
            c.expect_cmd("AUTH PLAIN " + plain, 535)

        def settled():
            m = scrape(porter)
            return m if sample(m, "porter_auth_failures_total", protocol="smtp") == 1 else None
        m = wait_until(settled, 5)
        self.assertTrue(m, "auth failure not counted")
        self.assertEqual(sample(m, "porter_messages_accepted_total", listener="relay"), 5)
        self.assertEqual(sample(m, "porter_messages_accepted_total", listener="submission"), 0)
        self.assertEqual(sample(m, "porter_recipients_delivered_total", **{"class": "remote"}), 3)
        self.assertEqual(sample(m, "porter_recipients_delivered_total", **{"class": "local"}), 1)
        self.assertEqual(sample(m, "porter_recipients_bounced_total", **{"class": "remote"}), 1)
        self.assertEqual(sample(m, "porter_recipients_deferred_total", **{"class": "remote"}), 1)
        self.assertEqual(sample(m, "porter_connections_total", protocol="smtp", listener="relay"),
                         5)
        self.assertEqual(sample(m, "porter_connections_total", protocol="smtp",
                                listener="submission"), 1)
        self.assertEqual(sample(m, "porter_tls_handshakes_total", protocol="smtp",
                                listener="submission"), 1)
        self.assertEqual(sample(m, "porter_delivery_latency_seconds_count",
                                **{"class": "remote"}), 3)
        listed = porter.cli_json("queue", "list")
        self.assertEqual(listed["matched"], 1)
        self.assertEqual(sample(m, "porter_queue_messages"), listed["matched"])
        self.assertGreater(sample(m, "porter_queue_oldest_message_age_seconds"), 0)
        self.assertEqual(sample(m, "porter_connections_open", protocol="smtp", listener="relay"),
                         0)


class JsonLogTest(AdminCase):
    def test_every_line_is_json(self):
        server = PorterServer("admin-json", roles=("relay",), tls=False)
        self.addCleanup(server.cleanup)
        server.settings["log"] = {"format": "json", "file": server.log_path}
        server.started_pattern = r'"event":"started"'
        server.start()
        ids = [self.send("j%d@remote.example" % i, porter=server)[0] for i in range(2)]
        server.cli("queue", "list")
        self.assertEqual(server.stop(), 0)
        lines = server.log_text().splitlines()
        self.assertGreater(len(lines), 5)
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                self.fail("not JSON: %r" % line)
        for e in events:
            self.assertIsInstance(e, dict)
            self.assertRegex(e.get("ts", ""), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(e.get("level"), ("debug", "info", "warn", "error"))
        queued = [e for e in events if e.get("event") == "queued"]
        self.assertEqual([e["id"] for e in queued], ids)
        self.assertEqual(queued[0]["from"], "<%s>" % self.sender)
        self.assertEqual([e["event"] for e in events][-1], "stopped")
        self.assertIn("started", [e["event"] for e in events])


if __name__ == "__main__":
    unittest.main()
