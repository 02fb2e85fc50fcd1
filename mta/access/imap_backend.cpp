#include "mta/access/imap_backend.h"

namespace mta::access {

ImapSearchFields::ImapSearchFields(uint32_t uid,
                                   const std::array<std::string_view, kFieldCount>& fields,
                                   int64_t sent_date_ms)
    : uid_(uid), sent_date_ms_(sent_date_ms) {
  size_t total = 0;
  for (std::string_view f : fields) total += f.size();
  text_.reserve(total);
  for (size_t i = 0; i < fields.size(); ++i) {
    text_.append(fields[i]);
    ends_[i] = static_cast<uint32_t>(text_.size());
  }
}

std::string_view ImapSearchFields::get(Field f) const {
  const uint32_t begin = f == kFrom ? 0 : ends_[f - 1];
  return std::string_view(text_).substr(begin, ends_[f] - begin);
}

const ImapSearchFields* ImapSearchCursor::seek(uint32_t uid) {
  for (; block_ < s_.blocks.size(); ++block_, item_ = 0) {
    const ImapSearchBlock& b = *s_.blocks[block_];
    while (item_ < b.size() && b[item_].uid() < uid) ++item_;
    if (item_ < b.size()) return b[item_].uid() == uid ? &b[item_] : nullptr;
  }
  return nullptr;
}

}  // namespace mta::access
