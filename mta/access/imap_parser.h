#pragma once
// Reading IMAP commands (RFC 9051 §2.2, §9) off the wire: the tag, the command name and its
// arguments as a tree of values, with literals of both kinds.
//
// ImapReader is fed bytes as they arrive and yields complete commands. A command is one line
// unless it holds literals: "{N}" (synchronising: the server must first send "+ ..." and
// the reader says so with need_continuation()), "{N+}" (LITERAL+, RFC 7888: the bytes follow
// at once) and "~{N}" (literal8, RFC 3516). The reader collects the literal's N octets and
// carries on with the rest of the line after it.
//
// Values: atoms, strings (quoted or literal), NIL, and parenthesised lists, nested. An atom
// may carry one bracketed part with spaces and parentheses in it, and a partial after it,
// so "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.512>" is one atom whose text the FETCH parser
// reads; this is how RFC 9051's grammar uses brackets.
//
// Errors are values: a command that cannot be read is reported with the tag (if one could be
// read) and a reason, and reading resumes at the next line, so one bad command never takes
// the session down. Limits (all configurable): line length, literal size, values per command,
// nesting depth; a literal over the limit is refused before its bytes are sent (for {N}) or
// skipped (for {N+}, RFC 7888 §4: the server must read and discard them).
//
// Pure; one reader per connection, one thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mta::access {

struct ImapValue {
  enum class Kind { kAtom, kString, kNil, kList };
  Kind kind = Kind::kAtom;
  std::string text;              // atom or string contents
  std::vector<ImapValue> items;  // list members
  bool literal = false;          // a string that came as a literal
  bool binary = false;           // literal8

  bool is_atom(std::string_view upper) const;  // an atom equal to `upper`, case-insensitively
  // An atom or a string (astring, RFC 9051 §9); NIL too, as the atom it also is.
  bool is_astring() const { return kind != Kind::kList; }
};

struct ImapCommand {
  std::string tag;
  std::string name;             // upper case; "UID FETCH" for UID commands
  std::vector<ImapValue> args;  // after the name
};

struct ImapReadError {
  std::string tag;     // "*" if no tag could be read
  std::string reason;  // for "tag BAD reason"
};

struct ImapLimits {
  size_t max_line = 65536;           // octets of one line, CRLF excluded
  uint64_t max_literal = 64 << 20;   // octets of one literal (APPEND carries whole messages)
  size_t max_values = 100000;        // values in one command
  size_t max_depth = 32;             // list nesting
};

class ImapReader {
 public:
  explicit ImapReader(ImapLimits limits = {}) : limits_(limits) {}

  void feed(std::string_view bytes) { buf_.append(bytes); }

  struct Event {
    enum class Kind { kNone, kCommand, kError, kContinue };
    Kind kind = Kind::kNone;
    ImapCommand command;  // kCommand
    ImapReadError error;  // kError
  };
  // The next event from what was fed: a whole command, an error, kContinue (a synchronising
  // literal is announced and within limits: send "+ Ready for literal data" and read on), or
  // kNone (more bytes are needed).
  Event next();

  // Raw line access for AUTHENTICATE continuations and IDLE's DONE: the next line without
  // parsing, or nullopt if it has not arrived. Only between commands.
  std::optional<std::string> next_line();

  // Bytes buffered and not yet consumed (for STARTTLS: must be none, RFC 9051 §6.2.1).
  size_t buffered() const { return buf_.size(); }
  void discard_buffered() { buf_.clear(); }

 private:
  Event read_line();
  bool parse(std::string_view line, size_t& pos, ImapValue& into, size_t depth);
  void reset();

  ImapLimits limits_;
  std::string buf_;
  // A command being assembled across literals:
  std::string text_;            // the command so far, literal bytes spliced in as markers
  std::vector<std::string> literals_;
  std::vector<bool> literal8_;
  uint64_t literal_left_ = 0;   // octets still to collect
  bool in_literal_ = false;
  bool skipping_ = false;       // discarding an oversize non-synchronising literal
  std::string skip_tag_;
  std::string skip_reason_;
  size_t values_ = 0;
};

// Sequence sets (RFC 9051 §9 sequence-set): "1:4,7,9:*", "$" (the saved result, RFC 5182).
// '*' stands for the largest number in use, given when the set is evaluated.
struct SequenceRange {
  uint32_t first = 0;  // 0 means '*'
  uint32_t last = 0;   // 0 means '*'
};
struct SequenceSet {
  std::vector<SequenceRange> ranges;
  bool saved = false;  // "$"
  // Whether `n` is in the set when '*' is `star` (ranges are unordered: "4:2" is 2..4).
  bool contains(uint32_t n, uint32_t star) const;
};
std::optional<SequenceSet> parse_sequence_set(std::string_view text);

}  // namespace mta::access
