#include "mta/mime/dsn.h"

#include <catch2/catch.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "core/header.h"
#include "mta/mime/header_fold.h"
#include "mta/mime/multipart.h"
#include "mta/mime/quoted_printable.h"

namespace mime = mta::mime;
using Action = mime::DsnRecipient::Action;

namespace {

constexpr std::string_view kOriginal =
    "From: Alice <alice@example.org>\r\n"
    "To: bob@remote.example\r\n"
    "Subject: hello\r\n"
    "Message-ID: <1@example.org>\r\n"
    "\r\n"
    "Hello Bob.\r\n"
    "--not-a-boundary\r\n"
    "..\r\n"
    "Bye.\r\n";
constexpr std::string_view kOriginalHeaders =
    "From: Alice <alice@example.org>\r\n"
    "To: bob@remote.example\r\n"
    "Subject: hello\r\n"
    "Message-ID: <1@example.org>\r\n";

constexpr int64_t kArrival = 1'700'000'000'000;  // Tue, 14 Nov 2023 22:13:20 +0000
constexpr int64_t kNow = kArrival + 3'600'000;

mime::DsnRecipient recipient(std::string local, std::string domain, Action action) {
  mime::DsnRecipient r;
  r.recipient.address = {std::move(local), std::move(domain)};
  r.action = action;
  r.last_attempt_ms = kNow - 60'000;
  switch (action) {
    case Action::kFailed:
      r.status = "5.1.1";
      r.remote_mta = "mx.remote.example";
      r.diagnostic = "550 5.1.1 <" + r.recipient.address.str() + ">: User unknown";
      r.diagnostic_from_remote = true;
      break;
    case Action::kDelayed:
      r.status = "4.4.1";
      r.diagnostic = "connection to mx.slow.example timed out";
      r.will_retry_until_ms = kArrival + 5 * 86'400'000LL;
      break;
    default:
      r.status = "2.0.0";
      r.remote_mta = "mx.remote.example";
      r.diagnostic = "250 2.0.0 Ok: queued as 4711";
      r.diagnostic_from_remote = true;
      break;
  }
  return r;
}

mime::DsnRequest request(std::vector<mime::DsnRecipient> rcpts) {
  mime::DsnRequest req;
  req.reporting_mta = "mail.porter.example";
  req.queue_id = "0ABCDEFGHJKMNPQR";
  req.original.sender = {"alice", "example.org"};
  req.original.received_at_ms = kArrival;
  req.recipients = std::move(rcpts);
  req.original_message = kOriginal;
  req.now_ms = kNow;
  req.message_id = "<0ABCDEFGHJKMNPQR.dsn@mail.porter.example>";
  req.postmaster = "MAILER-DAEMON@mail.porter.example";
  return req;
}

using Group = std::vector<core::HeaderField>;

// The unfolded value of a field, or "(absent)".
std::string field(const Group& g, std::string_view name) {
  const auto* f = core::find_field(g, name);
  return f ? core::unfold(f->value) : "(absent)";
}

std::vector<std::string> names(const Group& g) {
  std::vector<std::string> out;
  for (const auto& f : g) out.emplace_back(f.name);
  return out;
}

// Every line ends with CRLF and has at most 998 octets before it (RFC 5322 §2.1.1).
void check_lines(std::string_view msg) {
  REQUIRE(msg.size() >= 2);
  CHECK(msg.substr(msg.size() - 2) == "\r\n");
  size_t pos = 0;
  size_t longest = 0;
  while (pos < msg.size()) {
    size_t eol = msg.find("\r\n", pos);
    REQUIRE(eol != std::string_view::npos);
    const std::string_view line = msg.substr(pos, eol - pos);
    CHECK(line.find('\n') == std::string_view::npos);
    CHECK(line.find('\r') == std::string_view::npos);
    longest = std::max(longest, line.size());
    pos = eol + 2;
  }
  CHECK(longest <= 998);
}

// A DSN read back with the MIME reader: the top-level fields, each part, and the
// delivery-status body as groups of fields.
struct Parsed {
  std::string raw;
  Group top;
  mime::ContentType type;
  std::vector<mime::Entity> parts;
  std::vector<mime::ContentType> types;
  std::vector<Group> status;  // [0] per-message, then one per recipient
  std::string text;           // part 1, transfer encoding undone
};

Parsed parse(std::string raw) {
  Parsed p;
  p.raw = std::move(raw);
  check_lines(p.raw);
  const mime::Entity top = mime::split_entity(p.raw);
  p.top = top.fields;
  const auto* ct = core::find_field(p.top, "Content-Type");
  REQUIRE(ct);
  auto type = mime::parse_content_type(ct->value);
  REQUIRE(type);
  p.type = *type;
  REQUIRE(p.type.is("multipart", "report"));
  CHECK(p.type.param("report-type") == "delivery-status");
  const auto boundary = p.type.param("boundary");
  REQUIRE(boundary);
  auto parts = mime::split_multipart(top.body, *boundary);
  REQUIRE(parts.is_ok());
  for (std::string_view part : *parts) {
    p.parts.push_back(mime::split_entity(part));
    const auto* pct = core::find_field(p.parts.back().fields, "Content-Type");
    REQUIRE(pct);
    auto t = mime::parse_content_type(pct->value);
    REQUIRE(t);
    p.types.push_back(*t);
  }
  REQUIRE(p.parts.size() >= 2);
  p.text = std::string(p.parts[0].body);
  if (field(p.parts[0].fields, "Content-Transfer-Encoding") == "quoted-printable")
    p.text = mime::decode_quoted_printable(p.text);
  std::string_view ds = p.parts[1].body;
  while (!ds.empty()) {
    const auto end = core::header_end(ds);
    const size_t n = end ? *end : ds.size();
    p.status.push_back(core::parse_header_fields(ds.substr(0, n)));
    ds.remove_prefix(n);
  }
  return p;
}

Parsed compose(const mime::DsnRequest& req) {
  auto dsn = mime::compose_dsn(req);
  REQUIRE(dsn.is_ok());
  return parse(std::move(dsn).value());
}

constexpr uint8_t kFail = core::kNotifyFailure;
constexpr uint8_t kDelay = core::kNotifyDelay;
constexpr uint8_t kSucc = core::kNotifySuccess;
constexpr uint8_t kNever = core::kNotifyNever;

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

}  // namespace

TEST_CASE("dsn: one failed recipient with the remote reply", "[mime][unit]") {
  const Parsed p = compose(request({recipient("bob", "remote.example", Action::kFailed)}));

  CHECK(field(p.top, "From") == "\"Mail Delivery System\" <MAILER-DAEMON@mail.porter.example>");
  CHECK(field(p.top, "To") == "<alice@example.org>");
  CHECK(field(p.top, "Subject") == "Undelivered Mail Returned to Sender");
  CHECK(field(p.top, "Date") == "Tue, 14 Nov 2023 23:13:20 +0000");
  CHECK(field(p.top, "Message-ID") == "<0ABCDEFGHJKMNPQR.dsn@mail.porter.example>");
  CHECK(field(p.top, "Auto-Submitted") == "auto-replied");
  CHECK(field(p.top, "MIME-Version") == "1.0");
  CHECK(field(p.top, "Content-Transfer-Encoding") == "7bit");

  REQUIRE(p.parts.size() == 3);
  CHECK(p.types[0].is("text", "plain"));
  CHECK(p.types[0].param("charset") == "us-ascii");
  CHECK(p.types[1].is("message", "delivery-status"));
  CHECK(p.types[2].is("message", "rfc822"));
  CHECK(p.parts[2].body == kOriginal);

  REQUIRE(p.status.size() == 2);
  CHECK(names(p.status[0]) ==
        std::vector<std::string>{"Reporting-MTA", "X-Porter-Queue-ID", "Arrival-Date"});
  CHECK(field(p.status[0], "Reporting-MTA") == "dns; mail.porter.example");
  CHECK(field(p.status[0], "X-Porter-Queue-ID") == "0ABCDEFGHJKMNPQR");
  CHECK(field(p.status[0], "Arrival-Date") == "Tue, 14 Nov 2023 22:13:20 +0000");
  const Group& r = p.status[1];
  CHECK(names(r) == std::vector<std::string>{"Final-Recipient", "Action", "Status", "Remote-MTA",
                                             "Diagnostic-Code", "Last-Attempt-Date"});
  CHECK(field(r, "Final-Recipient") == "rfc822; bob@remote.example");
  CHECK(field(r, "Action") == "failed");
  CHECK(field(r, "Status") == "5.1.1");
  CHECK(field(r, "Remote-MTA") == "dns; mx.remote.example");
  CHECK(field(r, "Diagnostic-Code") == "smtp; 550 5.1.1 <bob@remote.example>: User unknown");
  CHECK(field(r, "Last-Attempt-Date") == "Tue, 14 Nov 2023 23:12:20 +0000");

  CHECK(contains(p.text, "<bob@remote.example>: delivery failed permanently (status 5.1.1)."));
  CHECK(contains(p.text, "The mail server mx.remote.example answered:"));
  CHECK(contains(p.text, "        550 5.1.1 <bob@remote.example>: User unknown\r\n"));
  CHECK(contains(p.text, "The original message has queue ID 0ABCDEFGHJKMNPQR and arrived on"));
}

TEST_CASE("dsn: failed and delayed recipients in one report", "[mime][unit]") {
  auto failed = recipient("bob", "remote.example", Action::kFailed);
  failed.status = "";  // the policy did not know: the action's default class is used
  auto delayed = recipient("carol", "slow.example", Action::kDelayed);
  const Parsed p = compose(request({failed, delayed}));

  CHECK(field(p.top, "Subject") == "Undelivered Mail Returned to Sender");
  REQUIRE(p.parts.size() == 3);
  CHECK(p.types[2].is("message", "rfc822"));
  REQUIRE(p.status.size() == 3);
  CHECK(field(p.status[1], "Action") == "failed");
  CHECK(field(p.status[1], "Status") == "5.0.0");
  CHECK(field(p.status[1], "Will-Retry-Until") == "(absent)");
  const Group& d = p.status[2];
  CHECK(field(d, "Final-Recipient") == "rfc822; carol@slow.example");
  CHECK(field(d, "Action") == "delayed");
  CHECK(field(d, "Status") == "4.4.1");
  CHECK(field(d, "Remote-MTA") == "(absent)");
  CHECK(field(d, "Diagnostic-Code") == "X-Porter; connection to mx.slow.example timed out");
  CHECK(field(d, "Will-Retry-Until") == "Sun, 19 Nov 2023 22:13:20 +0000");
  CHECK(contains(p.text, "<carol@slow.example>: delivery is delayed (status 4.4.1)"));
  CHECK(contains(p.text, "Reason: connection to mx.slow.example timed out"));
}

TEST_CASE("dsn: a delay warning returns only the header section", "[mime][unit]") {
  const Parsed p = compose(request({recipient("carol", "slow.example", Action::kDelayed)}));
  CHECK(field(p.top, "Subject") == "Delayed Mail (still being retried)");
  REQUIRE(p.parts.size() == 3);
  CHECK(p.types[2].is("text", "rfc822-headers"));
  CHECK(p.parts[2].body == kOriginalHeaders);
  CHECK(contains(p.text, "THIS IS A WARNING ONLY"));
  CHECK(contains(p.text, "until Sun, 19 Nov 2023 22:13:20 +0000"));
  REQUIRE(p.status.size() == 2);
  CHECK(field(p.status[1], "Action") == "delayed");
}

TEST_CASE("dsn: a success report", "[mime][unit]") {
  const Parsed p = compose(request({recipient("bob", "remote.example", Action::kDelivered),
                                    recipient("dan", "old.example", Action::kRelayed)}));
  CHECK(field(p.top, "Subject") == "Successful Mail Delivery Report");
  REQUIRE(p.status.size() == 3);
  CHECK(field(p.status[1], "Action") == "delivered");
  CHECK(field(p.status[1], "Status") == "2.0.0");
  CHECK(field(p.status[1], "Diagnostic-Code") == "smtp; 250 2.0.0 Ok: queued as 4711");
  CHECK(field(p.status[2], "Action") == "relayed");
  CHECK(contains(p.text, "<bob@remote.example>: delivered to mx.remote.example"));
  CHECK(contains(p.text, "<dan@old.example>: relayed to mx.remote.example"));
  REQUIRE(p.parts.size() == 3);
  CHECK(p.types[2].is("text", "rfc822-headers"));
}

TEST_CASE("dsn: RET decides what of the original goes back", "[mime][unit]") {
  const auto [ret, action, full] = GENERATE(table<core::DsnRet, Action, bool>({
      {core::DsnRet::kUnset, Action::kFailed, true},
      {core::DsnRet::kFull, Action::kFailed, true},
      {core::DsnRet::kHeaders, Action::kFailed, false},
      {core::DsnRet::kUnset, Action::kDelayed, false},
      {core::DsnRet::kFull, Action::kDelayed, true},
      {core::DsnRet::kHeaders, Action::kDelayed, false},
      {core::DsnRet::kUnset, Action::kDelivered, false},
      {core::DsnRet::kFull, Action::kDelivered, true},
      {core::DsnRet::kHeaders, Action::kDelivered, false},
  }));
  auto req = request({recipient("bob", "remote.example", action)});
  req.original.ret = ret;
  const Parsed p = compose(req);
  REQUIRE(p.parts.size() == 3);
  if (full) {
    CHECK(p.types[2].is("message", "rfc822"));
    CHECK(p.parts[2].body == kOriginal);
  } else {
    CHECK(p.types[2].is("text", "rfc822-headers"));
    CHECK(p.parts[2].body == kOriginalHeaders);
  }
  CHECK_FALSE(contains(p.text, "omitted"));
}

TEST_CASE("dsn: an original too large or not MIME-clean goes back as headers", "[mime][unit]") {
  auto req = request({recipient("bob", "remote.example", Action::kFailed)});
  req.original.ret = core::DsnRet::kFull;
  std::string original(kOriginal);
  SECTION("larger than max_returned_body") {
    req.max_returned_body = kOriginal.size() - 1;
    req.original_message = original;
    const Parsed p = compose(req);
    REQUIRE(p.parts.size() == 3);
    CHECK(p.types[2].is("text", "rfc822-headers"));
    CHECK(p.parts[2].body == kOriginalHeaders);
    CHECK(contains(p.text, "The message body was omitted because the message is larger than"));
  }
  SECTION("exactly max_returned_body goes back whole") {
    req.max_returned_body = kOriginal.size();
    const Parsed p = compose(req);
    CHECK(p.types[2].is("message", "rfc822"));
  }
  SECTION("a body line over 998 octets") {
    original += std::string(1200, 'x') + "\r\n";
    req.original_message = original;
    const Parsed p = compose(req);
    CHECK(p.types[2].is("text", "rfc822-headers"));
    CHECK(contains(p.text, "omitted"));
  }
  SECTION("no original at all") {
    req.original_message = {};
    const Parsed p = compose(req);
    CHECK(p.parts.size() == 2);
    CHECK(contains(p.text, "The original message is not available."));
  }
}

TEST_CASE("dsn: ENVID and ORCPT are reported", "[mime][unit]") {
  auto r = recipient("bob", "remote.example", Action::kFailed);
  r.recipient.orcpt = "rfc822;Bob.Original@Remote.example";
  auto req = request({r});
  req.original.envid = "QQ314159";
  const Parsed p = compose(req);
  REQUIRE(p.status.size() == 2);
  CHECK(names(p.status[0])[0] == "Original-Envelope-Id");
  CHECK(field(p.status[0], "Original-Envelope-Id") == "QQ314159");
  CHECK(names(p.status[1])[0] == "Original-Recipient");
  CHECK(field(p.status[1], "Original-Recipient") == "rfc822; Bob.Original@Remote.example");
  CHECK(field(p.status[1], "Final-Recipient") == "rfc822; bob@remote.example");
}

TEST_CASE("dsn: internationalised mail uses the RFC 6533 types", "[mime][unit]") {
  const std::string local = "\xE7\x94\xA8\xE6\x88\xB7";      // 用户
  const std::string domain = "\xE4\xBE\x8B\xE3\x81\x88.jp";  // 例え.jp
  SECTION("a UTF-8 recipient") {
    auto req = request({recipient(local, domain, Action::kFailed)});
    CHECK(mime::uses_global_types(req));
    const Parsed p = compose(req);
    REQUIRE(p.parts.size() == 3);
    CHECK(p.types[1].is("message", "global-delivery-status"));
    CHECK(p.types[2].is("message", "global"));
    CHECK(p.parts[2].body == kOriginal);
    CHECK(field(p.top, "Content-Transfer-Encoding") == "8bit");
    CHECK(field(p.parts[1].fields, "Content-Transfer-Encoding") == "8bit");
    CHECK(field(p.status[1], "Final-Recipient") == "utf-8; " + local + "@" + domain);
    CHECK(p.types[0].param("charset") == "utf-8");
    CHECK(field(p.parts[0].fields, "Content-Transfer-Encoding") == "quoted-printable");
    CHECK(mime::is_ascii(p.parts[0].body));
    CHECK(contains(p.text, "<" + local + "@" + domain + ">: delivery failed"));
  }
  SECTION("an original sent with SMTPUTF8, headers only") {
    auto req = request({recipient("carol", "slow.example", Action::kDelayed)});
    req.original.smtputf8 = true;
    CHECK(mime::uses_global_types(req));
    const Parsed p = compose(req);
    REQUIRE(p.parts.size() == 3);
    CHECK(p.types[1].is("message", "global-delivery-status"));
    CHECK(p.types[2].is("message", "global-headers"));
    CHECK(field(p.status[1], "Final-Recipient") == "rfc822; carol@slow.example");
    CHECK(p.types[0].param("charset") == "us-ascii");
  }
  SECTION("a UTF-8 sender and ORCPT") {
    auto r = recipient("bob", "remote.example", Action::kFailed);
    r.recipient.orcpt = "utf-8;" + local + "@" + domain;
    auto req = request({r});
    req.original.sender = {local, domain};
    CHECK(mime::uses_global_types(req));
    const Parsed p = compose(req);
    CHECK(field(p.top, "To") == "<" + local + "@" + domain + ">");
    CHECK(p.types[1].is("message", "global-delivery-status"));
    CHECK(field(p.status[1], "Original-Recipient") == "utf-8; " + local + "@" + domain);
    CHECK(field(p.status[1], "Final-Recipient") == "rfc822; bob@remote.example");
  }
  SECTION("plain ASCII mail does not") {
    CHECK_FALSE(mime::uses_global_types(request({recipient("b", "c.example", Action::kFailed)})));
  }
}

TEST_CASE("dsn: a hostile remote reply stays inside its field", "[mime][unit]") {
  auto r = recipient("bob", "remote.example", Action::kFailed);
  r.diagnostic =
      "550 5.1.1 no\xff\xfe\r\nAction: delivered\r\n\r\nFinal-Recipient: rfc822; evil@x\r\n" +
      std::string(5000, 'A') + " \x01\x7f tail";
  const Parsed p = compose(request({r}));
  REQUIRE(p.parts.size() == 3);
  REQUIRE(p.status.size() == 2);
  const Group& g = p.status[1];
  CHECK(names(g) == std::vector<std::string>{"Final-Recipient", "Action", "Status", "Remote-MTA",
                                             "Diagnostic-Code", "Last-Attempt-Date"});
  CHECK(field(g, "Action") == "failed");
  CHECK(field(g, "Final-Recipient") == "rfc822; bob@remote.example");
  const std::string diag = field(g, "Diagnostic-Code");
  CHECK(diag.rfind("smtp; 550 5.1.1 no?? Action: delivered Final-Recipient: rfc822; evil@x A", 0) ==
        0);
  // Unfolding shows where the run of A's was cut to fit 998-octet lines: at most spaces.
  CHECK(diag.size() > 4000);
  CHECK(diag.size() < 4200);
  CHECK_FALSE(contains(p.parts[1].body, "\xff"));
  CHECK(p.parts[2].body == kOriginal);
  CHECK(contains(p.text, "550 5.1.1 no?? Action: delivered"));
}

TEST_CASE("dsn: the boundary moves off content that contains it", "[mime][unit]") {
  auto req = request({recipient("bob", "remote.example", Action::kFailed)});
  const std::string first = mime::compose_dsn(req).value();
  const auto type = mime::parse_content_type(
      core::find_field(mime::split_entity(first).fields, "Content-Type")->value);
  const std::string boundary = *type->param("boundary");
  std::string original(kOriginal);
  original += "--" + boundary + "\r\n--" + boundary + "--\r\n";
  req.original_message = original;
  const Parsed p = compose(req);
  CHECK(*p.type.param("boundary") != boundary);
  REQUIRE(p.parts.size() == 3);
  CHECK(p.parts[2].body == original);
}

TEST_CASE("dsn: requests that cannot make a DSN", "[mime][unit]") {
  auto req = request({recipient("bob", "remote.example", Action::kFailed)});
  SECTION("null sender") {
    req.original.sender = {};
  }
  SECTION("no recipients") {
    req.recipients.clear();
  }
  SECTION("no message id") {
    req.message_id = "\r\n";
  }
  SECTION("no reporting MTA") {
    req.reporting_mta.clear();
  }
  const auto dsn = mime::compose_dsn(req);
  REQUIRE_FALSE(dsn.is_ok());
  CHECK(dsn.status().kind() == core::Status::Kind::kInvalid);
}

TEST_CASE("dsn: should_send_dsn follows RFC 3461 NOTIFY", "[mime][unit]") {
  const auto [null_sender, notify, action, expected] = GENERATE(table<bool, uint8_t, Action, bool>({
      {false, 0, Action::kFailed, true},
      {false, 0, Action::kDelayed, true},
      {false, 0, Action::kDelivered, false},
      {false, 0, Action::kRelayed, false},
      {false, kNever, Action::kFailed, false},
      {false, kNever, Action::kDelayed, false},
      {false, kFail, Action::kFailed, true},
      {false, kFail, Action::kDelayed, false},
      {false, kFail, Action::kDelivered, false},
      {false, kDelay, Action::kFailed, false},
      {false, kDelay, Action::kDelayed, true},
      {false, kSucc, Action::kFailed, false},
      {false, kSucc, Action::kDelivered, true},
      {false, kSucc, Action::kRelayed, true},
      {false, kSucc, Action::kExpanded, true},
      {false, uint8_t(kSucc | kFail | kDelay), Action::kFailed, true},
      {false, uint8_t(kSucc | kFail | kDelay), Action::kDelayed, true},
      {false, uint8_t(kSucc | kFail | kDelay), Action::kDelivered, true},
      {true, 0, Action::kFailed, false},
      {true, kFail, Action::kFailed, false},
      {true, kSucc, Action::kDelivered, false},
  }));
  core::Envelope env;
  if (!null_sender) env.sender = {"alice", "example.org"};
  core::Recipient rcpt{{"bob", "remote.example"}, notify, {}};
  CAPTURE(null_sender, notify, mime::action_name(action));
  CHECK(mime::should_send_dsn(env, rcpt, action) == expected);
}
