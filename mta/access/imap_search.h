#pragma once
// IMAP SEARCH (RFC 9051 §6.4.4): the search program read from a command's arguments, its
// evaluation against one message, and the untagged answer (SEARCH, or ESEARCH of RFC 4731
// as IMAP4rev2 requires).
//
// Keys: the whole RFC 9051 set, sequence sets with '*' and "$" (RFC 5182), parenthesised
// lists (AND), NOT and OR; from IMAP4rev1 RECENT, NEW and OLD; MODSEQ (RFC 7162 §3.1.5, the
// optional entry name and type are accepted and ignored); a leading "CHARSET UTF-8" or
// "CHARSET US-ASCII"; and "RETURN (MIN MAX ALL COUNT SAVE)" before it.
//
// Semantics, where RFC 9051 leaves room:
// - Dates (BEFORE, ON, SINCE and the SENT* keys) compare calendar days in UTC: the time and
//   the time zone of the stored instant are disregarded after turning it into a UTC day. A
//   message whose Date: is unknown (sent_date_ms == 0) uses its internal date for SENT*, as
//   RFC 5256 §2.2 does for SORT.
// - Strings match as case-insensitive substrings of UTF-8 text. Folding is simple case
//   folding (towards lower case, one code point to one) for ASCII, Latin-1, Latin
//   Extended-A and Additional, Greek, Cyrillic, Armenian and the full-width Latin letters,
//   plus a few singletons (Kelvin, Angstrom and Ohm signs, long s, final sigma, micro sign,
//   dotted capital I, capital sharp s).
//   This is i;unicode-casemap without its normalisation: "é" and "e\u0301" differ, and "ß"
//   does not match "ss". An empty string matches every message, except for HEADER, where
//   it asks only that the field exists.
// - FROM, TO, CC, BCC and SUBJECT read the summary fields of SearchMessage; so does HEADER
//   for those fields and for Message-ID when its string is not empty, so header-only
//   searches need no header section. Other HEADER keys read the raw header section and
//   decode every instance of the field (RFC 2047); BODY reads the text parts of the message
//   decoded (mime/search_text.h); TEXT reads the decoded header section and the same body.
// - The loaders run only when a key needs them, at most once per message: AND and OR try
//   their cheap members first (flags, numbers, dates, then summary fields, then headers,
//   then bodies), which changes no result because keys have no side effects.
//
// Pure; a SearchProgram is immutable after parsing and may be shared by threads.
// Limits: lists, NOT and OR nest at most kMaxSearchDepth deep (a chain of ORs counts once),
// a program holds at most kMaxSearchKeys keys; BODY and TEXT see the first kMaxSearchText
// bytes of decoded text; attachments that are not text/* are not searched; no FUZZY,
// WITHIN (OLDER/YOUNGER), PARTIAL (RFC 9394) or SORT.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "mta/access/imap_parser.h"

namespace mta::access {

// System flags as SearchMessage::flags bits: the values of mta/mailbox/record.h's Flag, kept
// equal by the store's glue (access does not read mailbox records).
inline constexpr uint8_t kSearchSeen = 1;
inline constexpr uint8_t kSearchAnswered = 2;
inline constexpr uint8_t kSearchFlagged = 4;
inline constexpr uint8_t kSearchDeleted = 8;
inline constexpr uint8_t kSearchDraft = 16;

inline constexpr size_t kMaxSearchDepth = 32;
inline constexpr size_t kMaxSearchKeys = 10000;
inline constexpr size_t kMaxSearchText = 16u << 20;

enum class SearchOp : uint8_t {
  kAll,
  kAnd,         // children
  kOr,          // children (a chain of ORs is one node)
  kNot,         // children[0]
  kSequence,    // set, of sequence numbers
  kUid,         // set, of UIDs
  kFlagsSet,    // every bit of `flags` set
  kFlagsClear,  // every bit of `flags` clear
  kKeyword,     // text: keyword (case-insensitive)
  kUnkeyword,
  kRecent,
  kNew,     // recent and not seen
  kOld,     // not recent
  kLarger,  // number: size
  kSmaller,
  kBefore,  // day: days since 1970-01-01 (UTC)
  kOn,
  kSince,
  kSentBefore,
  kSentOn,
  kSentSince,
  kModseq,  // number: the least modseq
  kFrom,    // folded: the needle, case-folded
  kTo,
  kCc,
  kBcc,
  kSubject,
  kMessageId,  // only from HEADER Message-ID
  kHeader,     // text: field name; folded: the needle ("" = the field exists)
  kBody,
  kText,
};

// One node of the program; which members an op reads is noted beside it in SearchOp.
struct SearchKey {
  SearchOp op = SearchOp::kAll;
  uint8_t flags = 0;
  uint64_t number = 0;
  int64_t day = 0;
  std::string text;
  std::u32string folded;
  SequenceSet set;
  std::vector<SearchKey> children;
};

// RETURN options (RFC 4731 §3.1, RFC 5182 §2.4), as bits of SearchProgram::returns.
inline constexpr uint8_t kReturnMin = 1;
inline constexpr uint8_t kReturnMax = 2;
inline constexpr uint8_t kReturnAll = 4;
inline constexpr uint8_t kReturnCount = 8;
inline constexpr uint8_t kReturnSave = 16;

struct SearchProgram {
  SearchKey root;             // kAnd of the top-level keys
  bool esearch = false;       // RETURN was given: answer with ESEARCH even to IMAP4rev1
  uint8_t returns = 0;        // kReturn* bits; "RETURN ()" and no RETURN mean kReturnAll
  bool uses_modseq = false;   // a MODSEQ key: the answer carries MODSEQ (RFC 7162 §3.1.5)
  bool needs_header = false;  // some key may call header_section (HEADER)
  bool needs_body = false;    // some key may call whole_message (BODY, TEXT)
  // Some key reads the summary fields (FROM, TO, CC, BCC, SUBJECT, Message-ID, SENT*);
  // without them the caller need not read any summary.
  bool needs_summary = false;
};

// Reads args[first..] (after "SEARCH" or "UID SEARCH"). The error's Kind says the reply:
// kInvalid -> "tag BAD <message>" (syntax, unknown key, limits); kPermanent -> "tag NO
// <message>" (an unsupported charset, "[BADCHARSET (UTF-8)] ...", RFC 9051 §6.4.4).
core::Result<SearchProgram> parse_search(const std::vector<ImapValue>& args, size_t first);

// One message as SEARCH sees it. Views and loaders must stay valid during matches().
struct SearchMessage {
  uint32_t seq = 0;
  uint32_t uid = 0;
  uint64_t size = 0;  // RFC822.SIZE
  int64_t internal_date_ms = 0;
  uint64_t modseq = 0;
  uint8_t flags = 0;  // kSearch* bits
  std::span<const std::string> keywords;
  bool recent = false;  // the session's \Recent (IMAP4rev1); false under IMAP4rev2
  // The decoded value (mime::decode_header_value) of the first such field, "" if none.
  std::string_view from, to, cc, bcc, subject, message_id;
  int64_t sent_date_ms = 0;  // the Date: field; 0 = missing or unreadable
  // Raw bytes, called at most once each per matches(); either may be left unset (a key that
  // needs the bytes then sees none).
  // A header section is taken from whole_message instead when that was already loaded.
  std::function<std::string()> header_section;
  std::function<std::string()> whole_message;
};

struct SearchContext {
  uint32_t max_seq = 0;  // what '*' means in a sequence set
  uint32_t max_uid = 0;  // what '*' means in a UID set
  // The saved result ("$", RFC 5182) as UIDs, ascending: "$" and "UID $" both name these
  // messages. Empty when nothing was saved.
  std::span<const uint32_t> saved_uids;
};

bool matches(const SearchProgram& program, const SearchMessage& message,
             const SearchContext& context);

// "1:3,9" for {1, 2, 3, 9}; the numbers in any order, duplicates allowed; "" for none.
std::string compact_sequence_set(std::span<const uint32_t> numbers);

// The untagged answer with its CRLF, or "" when RETURN (SAVE) alone asks for none:
//   ESEARCH (the program has RETURN, or imap4rev2 is enabled):
//     * ESEARCH (TAG "a1") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9 MODSEQ 12
//   otherwise (IMAP4rev1):  * SEARCH 1 2 3 9 (MODSEQ 12)
// `matched` are the numbers found (UIDs for UID SEARCH), in any order. MIN, MAX and ALL are
// left out when nothing matched (RFC 4731 §3.1), and so is MODSEQ; `modseq` is the caller's
// (RFC 7162 §3.1.5: the highest mod-sequence of the messages returned).
// Whether `key` (or a key inside it) reads the summary fields, or with `with_text` also the
// header section or the message (HEADER, BODY, TEXT). Keys that do not can be matched from
// flags, dates, sizes and numbers alone.
bool reads_message_data(const SearchKey& key, bool with_text);

std::string search_response(const SearchProgram& program, std::string_view tag, bool uid,
                            bool imap4rev2, std::span<const uint32_t> matched,
                            std::optional<uint64_t> modseq = std::nullopt);

// What RETURN (SAVE) keeps (RFC 5182 §2.4): every match, or only the least and/or the
// greatest when MIN and/or MAX come without ALL and COUNT. `matched_uids` in any order;
// the result is ascending. A failed SEARCH saves the empty set (the caller's part).
std::vector<uint32_t> result_to_save(const SearchProgram& program,
                                     std::span<const uint32_t> matched_uids);

}  // namespace mta::access
