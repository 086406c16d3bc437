#include "registrations.hpp"

#include <algorithm>

namespace parley::push {

std::string registration_key(std::string_view jid, std::string_view node) {
  std::string key(jid);
  key += '\n';
  key += node;
  return key;
}

std::optional<Registration> registration_from(std::string_view key, std::string_view value) {
  size_t cut = key.find('\n');
  if (cut == std::string_view::npos || cut == 0) return std::nullopt;
  return Registration{std::string(key.substr(0, cut)), std::string(key.substr(cut + 1)), std::string(value)};
}

void Registrations::start(Host& host) {
  host_ = &host;
  // The table of before (a module's own SQL runs on the SQLite file whatever
  // the storage backend); the newline inside the literal is the key's
  // separator. Dropped once empty (OldTables).
  move_.start(host, {OldTables::Move{"mod_push_registrations",
                                     "SELECT user, jid || '\n' || node, options FROM mod_push_registrations "
                                     "WHERE host = ?1",
                                     "DELETE FROM mod_push_registrations WHERE host = ?1", KeyvalMove::Target::map}});
}

void Registrations::list(const std::string& user, ListFn done) {
  move_.when_ready(*host_, [this, user, done = std::move(done)] {
    bool sent = host_->map_get(user, [this, user, done](Result<MapResult, std::string> r) {
      if (!r) {
        host_->error("reading the push registrations of " + user + " failed: " + r.error());
        return done(std::nullopt);
      }
      std::vector<Registration> regs;
      regs.reserve(r->size());
      for (std::size_t i = 0; i < r->size(); ++i)
        if (auto reg = registration_from(r->at(i).key, r->at(i).value)) regs.push_back(std::move(*reg));
      std::sort(regs.begin(), regs.end(), [](const Registration& a, const Registration& b) {
        return a.jid != b.jid ? a.jid < b.jid : a.node < b.node;
      });
      done(std::move(regs));
    });
    if (!sent) done(std::nullopt);
  });
}

void Registrations::exists(const std::string& user, const std::string& jid, const std::string& node,
                           std::function<void(std::optional<bool>)> done) {
  list(user, [jid, node, done = std::move(done)](std::optional<std::vector<Registration>> regs) {
    if (!regs) return done(std::nullopt);
    done(std::any_of(regs->begin(), regs->end(),
                     [&](const Registration& r) { return r.jid == jid && r.node == node; }));
  });
}

void Registrations::put(const std::string& user, const Registration& reg, uint64_t max, PutFn done) {
  move_.when_ready(*host_, [this, user, reg, max, done = std::move(done)] {
    std::string key = registration_key(reg.jid, reg.node);
    bool sent = host_->map_put(user, {KeyvalItem{key, reg.options}}, max,
                               [done](Result<MapResult, std::string> r) { done(r ? std::string() : r.error()); });
    if (!sent) done("internal-server-error");
  });
}

void Registrations::remove(const std::string& user, const std::string& jid, std::optional<std::string> node,
                           CountFn done) {
  if (node) {
    move_.when_ready(*host_, [this, user, key = registration_key(jid, *node), done = std::move(done)] {
      bool sent = host_->map_remove(user, {key}, [done](Result<MapResult, std::string> r) {
        done(r ? std::optional<uint64_t>(r->changed()) : std::nullopt);
      });
      if (!sent) done(std::nullopt);
    });
    return;
  }
  // Every node of the service: its keys, then their removal.
  list(user, [this, user, jid, done = std::move(done)](std::optional<std::vector<Registration>> regs) {
    if (!regs) return done(std::nullopt);
    std::vector<std::string> keys;
    for (const Registration& r : *regs)
      if (r.jid == jid) keys.push_back(registration_key(r.jid, r.node));
    if (keys.empty()) return done(0);
    bool sent = host_->map_remove(user, keys, [done](Result<MapResult, std::string> r) {
      done(r ? std::optional<uint64_t>(r->changed()) : std::nullopt);
    });
    if (!sent) done(std::nullopt);
  });
}

void Registrations::clear(const std::string& user) {
  move_.when_ready(*host_, [this, user] {
    host_->map_clear(user, [this, user](Result<MapResult, std::string> r) {
      if (!r) host_->error("removing the push registrations of " + user + " failed: " + r.error());
    });
  });
}

}  // namespace parley::push
