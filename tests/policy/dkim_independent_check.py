#!/usr/bin/python3
"""Independent verifiers judge what Porter's DkimSigner makes.

DESIGN.md: signatures are checked by independent verifiers, never only by our own code.
porter_dkim_tool (tests/policy/dkim_tool.cpp: generate_key, dns_txt_record, DkimSigner behind
a command line) makes two keys (rsa-sha256, ed25519-sha256) and signs test messages with them
and with dkimpy's 2048-bit test key. Then, for every signature:
  - dkimpy (python3-dkim: dkim.DKIM.verify with a dnsfunc serving the TXT records), and
  - OpenDKIM's opendkim-testmsg
must say pass, and must say fail for a copy whose body, or one signed header field, was
changed afterwards.

opendkim-testmsg cannot be handed a key: in verify mode it only asks the system resolver
(res_query through /etc/resolv.conf, port 53; its -k option is for signing). So that part
runs in private namespaces (unshare -rnm: user, network, mount): loopback is brought up,
/etc/resolv.conf and /var/tmp (where it keeps a copy of the message) are bind-mounted over
with files of our temporary directory, and tests/dns/fake_dns_server.py serves the keys on
127.0.0.1:53 inside. Nothing outside the namespaces changes. opendkim-testmsg reports one
verdict per message (the first good signature), so it gets one message per key. Its build
also refuses (dkim_chunk: "Syntax error") a message without a Date field, so every test
message has one.

Usage: dkim_independent_check.py [--tool PATH]   (default: $PORTER_DKIM_TOOL)
Exit status: 0 every check passed; 1 a check failed, or the opendkim-testmsg checks could
not run here (namespaces not allowed): an independent verifier that did not run is no proof.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import dkim

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_DNS = os.path.join(HERE, "..", "dns", "fake_dns_server.py")
TESTDATA = os.path.join(HERE, "..", "..", "..", "shared", "testdata", "dkim", "dkimpy-data")
OPENDKIM_TESTMSG = "/usr/sbin/opendkim-testmsg"
SKIPPED = 1  # not run is not passed
DOMAIN = "example.com"

MESSAGES = {
    "plain": (
        b"From: Alice <alice@example.com>\r\n"
        b"To: Bob <bob@example.net>\r\n"
        b"Subject: Quarterly figures\r\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <q1@example.com>\r\n"
        b"\r\n"
        b"Hello Bob,\r\n\r\nthe figures are attached.\r\n"
    ),
    # What relaxed canonicalisation has to get right: folded and padded header fields,
    # trailing white space, runs of blanks, empty lines at the end, 8-bit text.
    "awkward": (
        b"Received: from client.example.org by mail.example.com\r\n"
        b"From: \"Alice, Accounts\" <alice@example.com>\r\n"
        b"To: bob@example.net,\r\n\tcarol@example.net\r\n"
        b"Subject:   A subject that is folded\r\n   over two lines  \r\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <q2@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"List-Unsubscribe: <mailto:unsub@example.com>\r\n"
        b"\r\n"
        b"Gr\xc3\xbc\xc3\x9fe,   with   runs of blanks \t \r\n"
        b"and trailing white space   \r\n"
        b"\r\n\r\n\r\n"
    ),
}

# (label, edit applied to a signed message): each must make every signature fail.
TAMPERINGS = [
    ("body", lambda m: m.replace(b"Hello Bob", b"Hello Eve").replace(b"Gr\xc3\xbc", b"Hi ")),
    ("subject", lambda m: m.replace(b"\r\nSubject:", b"\r\nSubject: Re:", 1)),
    ("second From",
     lambda m: m.replace(b"\r\nFrom:", b"\r\nFrom: <mallory@example.org>\r\nFrom:", 1)),
]


class Checks:
    def __init__(self):
        self.failures = 0
        self.count = 0

    def expect(self, ok, what):
        self.count += 1
        print(("ok    " if ok else "FAIL  ") + what, flush=True)
        if not ok:
            self.failures += 1


def run_tool(tool, args, stdin=None):
    done = subprocess.run([tool] + args, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        sys.exit("porter_dkim_tool %s failed: %s" % (" ".join(args), done.stderr.decode()))
    return done.stdout


def make_keys(tool, workdir):
    """selector -> (algorithm, private key file, TXT record)."""
    keys = {}
    for selector, algorithm in (("rsa", "rsa-sha256"), ("ed", "ed25519-sha256")):
        path = os.path.join(workdir, selector + ".pem")
        record = run_tool(tool, ["keygen", algorithm, path]).decode().strip()
        keys[selector] = (algorithm, path, record)
    with open(os.path.join(TESTDATA, "2048_testkey_wo_markers.pub.txt")) as f:
        keys["dkimpy"] = ("rsa-sha256", os.path.join(TESTDATA, "2048_testkey.key"),
                          f.read().strip())
    return keys


def sign(tool, keys, selectors, message):
    specs = ["%s:%s:%s" % (s, keys[s][0], keys[s][1]) for s in selectors]
    return run_tool(tool, ["sign", DOMAIN] + specs, stdin=message)


def dkimpy_verdict(message, idx, dnsfunc):
    """dkim.verify() for the idx-th signature; DKIM.verify() raises on some failures."""
    try:
        return dkim.DKIM(message).verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.DKIMException:
        return False


def check_dkimpy(checks, tool, keys):
    records = {("%s._domainkey.%s." % (s, DOMAIN)).encode(): keys[s][2].encode() for s in keys}

    def dnsfunc(name, timeout=5):
        return records.get(name)

    for name, message in MESSAGES.items():
        signed = sign(tool, keys, list(keys), message)
        for i, selector in enumerate(keys):
            verdict = dkimpy_verdict(signed, i, dnsfunc)
            checks.expect(verdict, "dkimpy: %s message, %s (%s): pass"
                          % (name, selector, keys[selector][0]))
            for label, tamper in TAMPERINGS:
                altered = tamper(signed)
                assert altered != signed
                verdict = dkimpy_verdict(altered, i, dnsfunc)
                checks.expect(not verdict, "dkimpy: %s message, %s, %s changed: fail"
                              % (name, selector, label))


def zone_text(keys):
    def quoted(text):  # TXT character-strings hold 255 octets at most
        return " ".join('"%s"' % text[i:i + 255] for i in range(0, len(text), 255))

    lines = ["$ORIGIN %s." % DOMAIN, "$TTL 300",
             "%s. 3600 IN SOA ns.%s. hostmaster.%s. 1 7200 900 1209600 120"
             % (DOMAIN, DOMAIN, DOMAIN)]
    for selector, (_, _, record) in keys.items():
        lines.append("%s._domainkey.%s. 300 IN TXT %s" % (selector, DOMAIN, quoted(record)))
    return "\n".join(lines) + "\n"


def check_opendkim(checks, tool, keys, workdir):
    """Returns False if the namespaces could not be made (the checks did not run)."""
    cases = []  # (file, description, expected pass)
    for name, message in MESSAGES.items():
        for selector in keys:
            signed = sign(tool, keys, [selector], message)
            variants = [("", signed, True)] + [(", %s changed" % label, tamper(signed), False)
                                               for label, tamper in TAMPERINGS]
            for suffix, data, good in variants:
                path = os.path.join(workdir, "case%d.eml" % len(cases))
                with open(path, "wb") as f:
                    f.write(data)
                what = "opendkim-testmsg: %s message, %s (%s)%s: %s" % (
                    name, selector, keys[selector][0], suffix, "pass" if good else "fail")
                cases.append((path, what, good))
    with open(os.path.join(workdir, "keys.zone"), "w") as f:
        f.write(zone_text(keys))
    with open(os.path.join(workdir, "resolv.conf"), "w") as f:
        f.write("nameserver 127.0.0.1\noptions attempts:2 timeout:2\n")
    os.mkdir(os.path.join(workdir, "var-tmp"))

    try:
        worker = subprocess.run(
            ["unshare", "-rnm", sys.executable, os.path.abspath(__file__),
             "--namespace-worker", workdir] + [path for path, _, _ in cases],
            capture_output=True, check=False, timeout=120)
        why = worker.stderr.decode().strip()
    except OSError as e:
        worker, why = None, str(e)
    if worker is None or worker.returncode == SKIPPED or not worker.stdout.strip():
        print("skip  opendkim-testmsg: cannot make namespaces here: %s" % why, flush=True)
        return False
    verdicts = json.loads(worker.stdout)
    for (path, what, good), (status, stderr) in zip(cases, verdicts):
        right = (status == 0) == good
        checks.expect(right, what if right else "%s [exit %d: %s]" % (what, status, stderr.strip()))
    return True


def namespace_worker(workdir, files):
    """Inside unshare -rnm: private loopback DNS, then opendkim-testmsg on each file."""
    try:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        for ours, system in (("resolv.conf", "/etc/resolv.conf"), ("var-tmp", "/var/tmp")):
            subprocess.run(["mount", "--bind", os.path.join(workdir, ours), system], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(e, file=sys.stderr)
        return SKIPPED
    server = subprocess.Popen(
        [sys.executable, FAKE_DNS, "--zone", os.path.join(workdir, "keys.zone"), "--port", "53"],
        stdout=subprocess.PIPE, text=True)
    try:
        if not server.stdout.readline().startswith("ready"):
            print("fake_dns_server.py did not start", file=sys.stderr)
            return 1
        verdicts = []
        for path in files:
            with open(path, "rb") as f:
                done = subprocess.run([OPENDKIM_TESTMSG], stdin=f, capture_output=True,
                                      check=False, timeout=30)
            verdicts.append((done.returncode, done.stderr.decode(errors="replace")))
        print(json.dumps(verdicts))
        return 0
    finally:
        server.kill()
        server.wait()


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--namespace-worker":
        return namespace_worker(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", default=os.environ.get("PORTER_DKIM_TOOL"))
    args = parser.parse_args()
    if not args.tool:
        parser.error("give --tool or set PORTER_DKIM_TOOL (the porter_dkim_tool binary)")

    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="porter-dkim-") as workdir:
        keys = make_keys(args.tool, workdir)
        check_dkimpy(checks, args.tool, keys)
        ran = check_opendkim(checks, args.tool, keys, workdir)
    print("%d checks, %d failed" % (checks.count, checks.failures))
    if checks.failures:
        return 1
    return 0 if ran else SKIPPED


if __name__ == "__main__":
    sys.exit(main())
