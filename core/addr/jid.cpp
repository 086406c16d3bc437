#include "core/addr/jid.hpp"

#include <functional>

namespace parley {
namespace {

// Three worst-case raw parts plus the two separators; anything longer is refused
// before any preparation work.
constexpr size_t kRawJidMaxBytes = 3 * 4 * kJidPartMaxBytes + 2;

}  // namespace

Result<Jid, JidError> Jid::parse(std::string_view text) {
  if (text.empty()) return unexpected(JidError::empty);
  if (text.size() > kRawJidMaxBytes) return unexpected(JidError::too_long);

  std::string_view rest = text;
  std::string_view resource;
  bool has_resource = false;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    resource = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    has_resource = true;
  }
  std::string_view local;
  bool has_local = false;
  if (const size_t at = rest.find('@'); at != std::string_view::npos) {
    local = rest.substr(0, at);
    rest = rest.substr(at + 1);
    has_local = true;
  }
  if (has_local && local.empty()) return unexpected(JidError::bad_localpart);
  if (rest.empty()) return unexpected(JidError::bad_domainpart);
  if (has_resource && resource.empty()) return unexpected(JidError::bad_resourcepart);

  Jid jid;
  if (has_local) {
    auto l = nodeprep(local);
    if (!l) return unexpected(l.error());
    jid.local_ = std::move(*l);
  }
  auto d = nameprep_domain(rest);
  if (!d) return unexpected(d.error());
  jid.domain_ = std::move(*d);
  if (has_resource) {
    auto r = resourceprep(resource);
    if (!r) return unexpected(r.error());
    jid.resource_ = std::move(*r);
  }
  return jid;
}

Result<Jid, JidError> Jid::make(std::string_view local, std::string_view domain,
                                std::string_view resource) {
  Jid jid;
  if (!local.empty()) {
    auto l = nodeprep(local);
    if (!l) return unexpected(l.error());
    jid.local_ = std::move(*l);
  }
  auto d = nameprep_domain(domain);
  if (!d) return unexpected(d.error());
  jid.domain_ = std::move(*d);
  if (!resource.empty()) {
    auto r = resourceprep(resource);
    if (!r) return unexpected(r.error());
    jid.resource_ = std::move(*r);
  }
  return jid;
}

Jid Jid::bare() const {
  Jid b;
  b.local_ = local_;
  b.domain_ = domain_;
  return b;
}

Jid Jid::with_resource(std::string_view resource) const {
  Jid j = bare();
  j.resource_ = std::string(resource);
  return j;
}

std::string Jid::bare_str() const {
  std::string s;
  s.reserve(local_.size() + 1 + domain_.size());
  if (!local_.empty()) {
    s += local_;
    s.push_back('@');
  }
  s += domain_;
  return s;
}

std::string Jid::full() const {
  // One allocation of the exact size (building on bare_str() grew it a second time).
  std::string s;
  s.reserve(local_.size() + 1 + domain_.size() + 1 + resource_.size());
  if (!local_.empty()) {
    s += local_;
    s.push_back('@');
  }
  s += domain_;
  if (!resource_.empty()) {
    s.push_back('/');
    s += resource_;
  }
  return s;
}

size_t JidHash::operator()(const Jid& jid) const noexcept {
  const std::hash<std::string_view> h;
  size_t seed = h(jid.local());
  for (const std::string* part : {&jid.domain(), &jid.resource()}) {
    seed ^= h(*part) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  }
  return seed;
}

}  // namespace parley
