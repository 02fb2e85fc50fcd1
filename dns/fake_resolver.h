#pragma once
// FakeResolver: an in-memory Resolver for the tests of modules that use DNS (delivery, SPF,
// DMARC), with faults per name.
//
// A name exists when it has at least one record of any type: asking it for another type is
// NODATA (ttl = negative_ttl), asking a name that does not exist is NXDOMAIN. A fault set
// for a name wins over its records for every type. Answers go through the Poster given at
// construction, so a test chooses a real loop (LoopPoster) or drains by hand (ManualPoster).
//
// Lifetime: the poster must outlive this; answers already posted are delivered even if the
// FakeResolver is destroyed first (they do not refer to it).
// Limits: no CNAMEs, no TTL countdown (a cache in front does that), one thread.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dns/post.h"
#include "dns/resolver.h"

namespace dns {

class FakeResolver final : public Resolver {
 public:
  enum class Fault {
    kNone,
    kNxdomain,  // Status::not_found, as if the name did not exist
    kServfail,  // Status::temporary "SERVFAIL"
    kTimeout,   // Status::temporary "timeout", delivered at once (no waiting)
  };

  explicit FakeResolver(Poster& poster) : poster_(poster) {}

  // A record's TTL lowers its answer's TTL to the smallest of its records.
  void add_mx(const std::string& domain, uint16_t preference, const std::string& host,
              uint32_t ttl = 300);
  void add_a(const std::string& name, const std::string& ip, uint32_t ttl = 300);
  void add_aaaa(const std::string& name, const std::string& ip, uint32_t ttl = 300);
  void add_txt(const std::string& name, const std::string& text, uint32_t ttl = 300);
  // `name` is the reverse name ("4.3.2.1.in-addr.arpa"), `host` the name it points to.
  void add_ptr(const std::string& name, const std::string& host, uint32_t ttl = 300);
  void set_fault(const std::string& name, Fault fault);
  void set_negative_ttl(uint32_t ttl) { negative_ttl_ = ttl; }

  // Every query received, in order, as "MX example.com" (name normalized).
  const std::vector<std::string>& queries() const { return queries_; }

  void query_mx(const std::string& domain, AnswerCallback<MxRecord> cb) override;
  void query_a(const std::string& name, AnswerCallback<std::string> cb) override;
  void query_aaaa(const std::string& name, AnswerCallback<std::string> cb) override;
  void query_txt(const std::string& name, AnswerCallback<std::string> cb) override;
  void query_ptr(const std::string& name, AnswerCallback<std::string> cb) override;

 private:
  template <typename T>
  using Zone = std::map<std::string, Answer<T>>;

  template <typename T>
  static void add(Zone<T>& zone, const std::string& name, T record, uint32_t ttl);
  template <typename T>
  void answer(const Zone<T>& zone, RrType type, const std::string& name, AnswerCallback<T> cb);
  bool exists(const std::string& key) const;

  Poster& poster_;
  uint32_t negative_ttl_ = kDefaultNegativeTtl;
  Zone<MxRecord> mx_;
  Zone<std::string> a_, aaaa_, txt_, ptr_;
  std::map<std::string, Fault> faults_;
  std::vector<std::string> queries_;
};

}  // namespace dns
