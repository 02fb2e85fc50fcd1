"""DKIM signing at acceptance (issue 5): a message whose From domain has a [[dkim]] key is
queued already signed, and an independent verifier (dkimpy) says pass for it and fail for a
tampered copy. Keys come from `porter dkim keygen`; the public key is served to dkimpy by a
dnsfunc, since dkimpy would otherwise ask the real DNS."""

import os
import re
import smtplib
import sys
import unittest
import uuid

sys.path.insert(0, "/usr/lib/python3/dist-packages")
import dkim  # noqa: E402  (python3-dkim, Debian's)

from porter_fixture import PorterServer, PorterTestCase, make_message, queued_id, run_porter  # noqa: E402


class DkimSigningTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = {}
        cls.server = PorterServer("dkim", roles=("relay",), tls=False)
        dkim_tables = []
        for selector, algorithm in (("rsa1", "rsa-sha256"), ("ed1", "ed25519-sha256")):
            key_file = os.path.join(cls.server.dir, selector + ".key")
            r = run_porter(["dkim", "keygen", "signed.test", selector, "--algorithm", algorithm,
                            "--out", key_file])
            assert r.returncode == 0, r.stderr
            record = "".join(re.findall(r'"([^"]*)"', r.stdout.decode()))
            cls.keys[("%s._domainkey.signed.test." % selector).encode()] = record.encode()
            dkim_tables.append({"domain": "signed.test", "selector": selector,
                                "algorithm": algorithm, "key_file": key_file})
        cls.server.settings["dkim"] = dkim_tables
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def dnsfunc(self, name, timeout=5):
        return self.keys.get(name if name.endswith(b".") else name + b".", b"")

    def submit(self, sender):
        msg = make_message(uuid.uuid4().hex, sender=sender)
        s = smtplib.SMTP("127.0.0.1", self.server.port("relay"), timeout=30)
        self.addCleanup(s.close)
        s.ehlo("client.test")
        s.mail(sender)
        s.rcpt("someone@elsewhere.test")
        code, reply = s.data(msg)
        self.assertEqual(code, 250, reply)
        return queued_id(reply.decode())

    def test_signed_with_both_keys_and_verified_by_dkimpy(self):
        qid = self.submit("app@signed.test")
        stored = self.server.queue_cat(qid)
        self.assertTrue(stored.startswith(b"DKIM-Signature:"), stored[:200])
        sigs = re.findall(rb"^DKIM-Signature:.*?(?=^\S)", stored, re.M | re.S)
        self.assertEqual(len(sigs), 2)
        self.assertTrue(any(b"a=rsa-sha256" in s for s in sigs))
        self.assertTrue(any(b"a=ed25519-sha256" in s for s in sigs))
        d = dkim.DKIM(stored)
        for i in range(2):
            self.assertTrue(d.verify(idx=i, dnsfunc=self.dnsfunc), "signature %d does not verify" % i)
        tampered_body = stored.replace(b"line 1", b"line X", 1)
        self.assertNotEqual(tampered_body, stored)
        self.assertFalse(dkim.verify(tampered_body, dnsfunc=self.dnsfunc))
        tampered_subject = re.sub(rb"^Subject: ", b"Subject: [changed] ", stored, count=1, flags=re.M)
        self.assertNotEqual(tampered_subject, stored)
        self.assertFalse(dkim.verify(tampered_subject, dnsfunc=self.dnsfunc))

    def test_other_domains_are_not_signed(self):
        qid = self.submit("app@unsigned.test")
        self.assertNotIn(b"DKIM-Signature:", self.server.queue_cat(qid))

    def test_check_config_refuses_a_missing_key_file(self):
        cfg = os.path.join(self.server.dir, "bad.toml")
        with open(cfg, "w") as f:
            f.write('[[listener]]\nrole = "relay"\nport = 2500\n'
                    '[[dkim]]\ndomain = "x.test"\nselector = "s"\nkey_file = "/nonexistent.key"\n')
        r = run_porter(["check-config", cfg])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent.key", r.stderr.decode())


if __name__ == "__main__":
    unittest.main()
