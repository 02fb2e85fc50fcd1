#include "policy/org_domain.h"

#include <libpsl.h>

#include <memory>

#include "core/address.h"

namespace policy {
namespace {

struct PslDeleter {
  void operator()(psl_ctx_t* ctx) const { psl_free(ctx); }
};

// The system list is newer than the copy compiled into libpsl when the publicsuffix package
// is updated; the built-in copy keeps DMARC working on a host without it.
const psl_ctx_t* suffix_list() {
  static const std::unique_ptr<psl_ctx_t, PslDeleter> loaded(psl_load_file(kPublicSuffixFile));
  static const psl_ctx_t* const ctx = loaded ? loaded.get() : psl_builtin();
  return ctx;
}

}  // namespace

std::string organizational_domain(std::string_view domain) {
  while (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  std::string name = core::to_lower_ascii(domain);
  const psl_ctx_t* ctx = suffix_list();
  if (name.empty() || ctx == nullptr) return name;
  const char* registrable = psl_registrable_domain(ctx, name.c_str());
  return registrable ? std::string(registrable) : name;
}

}  // namespace policy
