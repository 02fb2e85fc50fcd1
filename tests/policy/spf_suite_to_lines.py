#!/usr/bin/python3
"""Converts the openspf.org RFC 7208 SPF test suite (YAML) into lines the C++ suite test reads.

Usage: spf_suite_to_lines.py SUITE.yml OUT.tsv   (run by CMake at build time)

Output: one record per line, fields separated by TAB, each field escaped (backslash, then
\\t \\n \\r \\\\ or \\xHH for any byte outside printable ASCII):
  scenario  DESCRIPTION
  zone      NAME  A|AAAA|TXT|PTR  VALUE
  zone      NAME  MX  PREFERENCE  HOST          (HOST "." is a null MX)
  zone      NAME  FAULT  TIMEOUT|SERVFAIL
  test      ID  IP  HELO  MAILFROM  RESULT[,RESULT...]  HAS_EXPLANATION(0|1)  EXPLANATION

The zone data is turned into what a resolver would answer, following the suite's own driver
(pyspf's test/testspf.py):
  - Names are compared case-insensitively and without trailing dot.
  - "SPF" records (type 99, no longer used) stand in for TXT records when a name lists no
    TXT record at all; "TXT: NONE" lists none but stops that substitution.
  - A TXT record given as a list of strings is one record with the strings joined (RFC 7208
    §3.3); an empty list is an empty record.
  - "TIMEOUT" makes the name time out, unless records were listed before it: those are then
    served (pyspf serves them too) and other types of that name answer "no records", where
    pyspf would time out. No case of the suite asks such a name for another type.
  - A CNAME is followed here, in the converter: the alias answers what its target answers;
    a CNAME loop answers SERVFAIL, as a recursive resolver does.
  - A name absent from the zone data is NXDOMAIN (the C++ fake resolver's rule).
Any other record type or shape stops the conversion with an error, so a changed suite cannot
be half-read silently.
"""

import sys

try:
    import yaml
except ImportError:
    sys.exit("spf_suite_to_lines.py: python3-yaml is required (apt-get install python3-yaml)")


def to_bytes(value):
    """YAML "\\xEF" escapes are code points; the suite means the bytes of a DNS record."""
    text = str(value)
    if all(ord(c) < 256 for c in text):
        return text.encode("latin-1")
    return text.encode("utf-8")


def escape(value):
    data = value if isinstance(value, bytes) else to_bytes(value)
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif b == 0x09:
            out.append("\\t")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x0D:
            out.append("\\r")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("\\x%02X" % b)
    return "".join(out)


def name_key(name):
    name = str(name).lower()
    return name[:-1] if name.endswith(".") and len(name) > 1 else name


def txt_value(value):
    if isinstance(value, list):
        return b"".join(to_bytes(v) for v in value)
    return to_bytes(value)


class Zone:
    def __init__(self, zonedata):
        self.raw = {name_key(n): entries for n, entries in (zonedata or {}).items()}

    def entries(self, name):
        """(records, fault) of one name, CNAMEs not yet followed."""
        records, fault, cname = [], None, None
        entries = self.raw[name]
        if not isinstance(entries, list):
            raise ValueError("zone entry of %s is not a list" % name)
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        for i, entry in enumerate(entries):
            if entry == "TIMEOUT":
                if i != len(entries) - 1:
                    raise ValueError("TIMEOUT not last at %s" % name)
                if not records:
                    fault = "TIMEOUT"
                continue
            if not isinstance(entry, dict) or len(entry) != 1:
                raise ValueError("unexpected zone entry %r at %s" % (entry, name))
            (rtype, value), = entry.items()
            if rtype in ("A", "AAAA"):
                records.append((rtype, to_bytes(value)))
            elif rtype == "MX":
                preference, host = value
                host = name_key(host) if host else "."
                records.append(("MX", str(int(preference)).encode(), to_bytes(host)))
            elif rtype == "PTR":
                records.append(("PTR", to_bytes(name_key(value))))
            elif rtype == "TXT":
                if value != "NONE":
                    records.append(("TXT", txt_value(value)))
            elif rtype == "SPF":
                if not has_txt:
                    records.append(("TXT", txt_value(value)))
            elif rtype == "CNAME":
                cname = name_key(value)
            else:
                raise ValueError("unknown record type %s at %s" % (rtype, name))
        return records, fault, cname

    def resolve(self, name):
        """(records, fault) with CNAME chains followed."""
        seen = []
        while True:
            if name in seen:
                return [], "SERVFAIL"
            seen.append(name)
            if name not in self.raw:
                return [], None
            records, fault, cname = self.entries(name)
            if cname is None:
                return records, fault
            name = cname


def convert(suite_path, out_path):
    with open(suite_path, "rb") as f:
        scenarios = list(yaml.safe_load_all(f))
    lines = []

    def emit(*fields):
        lines.append("\t".join(escape(x) for x in fields))

    for scenario in scenarios:
        emit("scenario", scenario["description"])
        zone = Zone(scenario.get("zonedata"))
        for name in zone.raw:
            records, fault = zone.resolve(name)
            if fault:
                emit("zone", name, "FAULT", fault)
            for record in records:
                emit("zone", name, *record)
        for test_id, test in scenario["tests"].items():
            result = test["result"]
            results = result if isinstance(result, list) else [result]
            has_exp = "explanation" in test
            emit("test", test_id, test["host"], test["helo"], test["mailfrom"],
                 ",".join(results), "1" if has_exp else "0",
                 test["explanation"] if has_exp else "")
    with open(out_path, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(sys.argv[1], sys.argv[2])
