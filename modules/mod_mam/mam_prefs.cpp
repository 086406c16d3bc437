// mod_mam: the archiving preferences on the keyval store, and the `roster` default
// (mam_prefs.hpp says how).
#include "mam_prefs.hpp"

#include <atomic>
#include <memory>
#include <utility>

namespace parley::mod_mam {

namespace {
constexpr std::string_view prefs_key = "prefs";

std::string verdict_key(const std::string& owner, std::string_view with) {
  return owner + "\n" + std::string(with);
}
}  // namespace

void MamPrefs::start(Host& host, Prefs defaults, std::string_view domain, std::size_t max_held) {
  host_ = &host;
  max_held_ = max_held;
  defaults_ = std::move(defaults);
  domain_ = std::string(domain);
  loops_.init(host);
  asks_.init(host, "mod_mam");
  // The preferences of a server that kept them in mod_mam_prefs (SQLite, before the
  // keyval store): moved once, never over ones set meanwhile, the table dropped once
  // empty (OldTables); reads wait.
  move_.start(host, {OldTables::Move{"mod_mam_prefs",
                                     "SELECT owner, 'prefs', prefs FROM mod_mam_prefs WHERE owner LIKE '%@' || ?1",
                                     "DELETE FROM mod_mam_prefs WHERE owner LIKE '%@' || ?1",
                                     KeyvalMove::Target::keyval, domain_}});
}

const Prefs* MamPrefs::cached(const std::string& owner) {
  auto& prefs = loops_.here().prefs;
  auto it = prefs.find(owner);
  return it == prefs.end() ? nullptr : &it->second;
}

void MamPrefs::remember(const std::string& owner, const Prefs& prefs, bool overwrite) {
  auto& map = loops_.here().prefs;
  // Bounded: past it the loop forgets every owner and reads them again as they come.
  if (map.size() >= max_cached && map.find(owner) == map.end()) map.clear();
  if (overwrite) map[owner] = prefs;
  else map.emplace(owner, prefs);  // a set() that reached this loop meanwhile wins
}

void MamPrefs::load(const std::string& owner, std::function<void(std::optional<Prefs>)> done) {
  if (const Prefs* p = cached(owner)) return done(*p);
  move_.when_ready(*host_, [this, owner, done = std::move(done)]() mutable {
    auto shared = std::make_shared<std::function<void(std::optional<Prefs>)>>(std::move(done));
    const bool sent = host_->keyval_get(owner, prefs_key, [this, owner, shared](Result<KeyvalResult, std::string> r) {
      if (!r) {
        host_->error("reading the archiving preferences of " + owner + " failed: " + r.error());
        return (*shared)(std::nullopt);
      }
      std::optional<Prefs> prefs = r->found() ? decode_prefs(r->value()) : std::optional<Prefs>(defaults_);
      if (!prefs) {
        host_->warn("the stored archiving preferences of " + owner + " are damaged: the default applies");
        prefs = defaults_;
      }
      remember(owner, *prefs, false);
      (*shared)(*cached(owner));
    });
    if (!sent) (*shared)(std::nullopt);
  });
}

void MamPrefs::get(const std::string& owner, std::function<void(std::optional<Prefs>)> done) {
  load(owner, std::move(done));
}

void MamPrefs::set(const std::string& owner, Prefs prefs, std::function<void(bool)> done) {
  const std::string encoded = encode_prefs(prefs);
  move_.when_ready(*host_, [this, owner, prefs, encoded, done = std::move(done)]() mutable {
    auto shared = std::make_shared<std::function<void(bool)>>(std::move(done));
    const bool sent = host_->keyval_put(owner, prefs_key, encoded, [this, owner, prefs, shared](Result<KeyvalResult, std::string> r) {
      if (!r) {
        host_->error("storing the archiving preferences of " + owner + " failed: " + r.error());
        return (*shared)(false);
      }
      // Every loop's copy first, then the answer: a message that the client sends
      // after the answer meets the new preferences (posts keep their order).
      const uint32_t n = static_cast<uint32_t>(loops_.size());
      // Decremented on every loop: atomic (TSan caught the plain counter in CI).
      auto left = std::make_shared<std::atomic<uint32_t>>(n);
      const int32_t here = current_loop(*host_);
      for (uint32_t l = 0; l < n; ++l)
        post(*host_, l, [this, owner, prefs, left, shared, here] {
          remember(owner, prefs, true);
          if (left->fetch_sub(1, std::memory_order_acq_rel) == 1) post(*host_, static_cast<uint32_t>(here), [shared] { (*shared)(true); });
        });
    });
    if (!sent) (*shared)(false);
  });
}

void MamPrefs::remove(const std::string& owner) {
  move_.when_ready(*host_, [this, owner] {
    host_->keyval_remove_user(owner, [this, owner](Result<KeyvalResult, std::string> r) {
      if (!r) host_->warn("could not remove the archiving preferences of " + owner + ": " + r.error());
    });
  });
  for (uint32_t l = 0; l < loops_.size(); ++l)
    post(*host_, l, [this, owner] { loops_.here().prefs.erase(owner); });
}

void MamPrefs::resolve(const std::string& owner, const std::string& with, std::function<void(bool)> done) {
  load(owner, [this, owner, with, done = std::move(done)](std::optional<Prefs> prefs) {
    // Unreadable preferences: archived (the default of the XEP's servers), logged.
    const Decision d = prefs ? decide(*prefs, with) : Decision::archive;
    if (d != Decision::ask_roster) return done(d == Decision::archive);
    const Jid account = Jid::prepared(owner);
    const std::string contact = Jid::prepared(with).bare_str();
    asks_.ask_roster(account.local(), contact, [this, owner, done](auto roster) {
      if (!roster) {
        host_->error("the roster of " + owner + " could not be read for its `roster` archiving preference");
        return done(true);
      }
      done(!roster->empty());  // only the contact's item is asked for
    });
  });
}

std::optional<bool> MamPrefs::outgoing_now(const std::string& owner, std::string_view with) {
  const Prefs* p = cached(owner);
  if (p == nullptr) return std::nullopt;
  const Decision d = decide(*p, with);
  if (d == Decision::ask_roster) return std::nullopt;
  return d == Decision::archive;
}

std::optional<bool> MamPrefs::incoming_now(const std::string& owner, std::string_view with) {
  Loop& loop = loops_.here();
  // A held message's second pass, or the owner's messages held: incoming() keeps the order.
  if (!loop.verdicts.empty() || loop.waiting.contains(owner)) return std::nullopt;
  return outgoing_now(owner, with);
}

void MamPrefs::outgoing(const std::string& owner, std::string with, std::function<void()> archive) {
  if (const Prefs* p = cached(owner)) {
    const Decision d = decide(*p, with);
    if (d == Decision::archive) return archive();
    if (d == Decision::skip) return;
  }
  resolve(owner, with, [archive = std::move(archive)](bool yes) {
    if (yes) archive();
  });
}

MamPrefs::Incoming MamPrefs::incoming(const std::string& owner, std::string_view with, ElementRef message,
                                      bool* archive, Release release) {
  Loop& loop = loops_.here();
  // The second pass of a held message that was not archived.
  if (!loop.verdicts.empty()) {
    auto v = loop.verdicts.find(verdict_key(owner, with));
    if (v != loop.verdicts.end() && !v->second.empty()) {
      *archive = v->second.front();
      v->second.erase(v->second.begin());
      if (v->second.empty()) loop.verdicts.erase(v);
      return Incoming::now;
    }
  }
  auto waiting = loop.waiting.find(owner);
  if (waiting == loop.waiting.end()) {
    if (const Prefs* p = cached(owner)) {
      const Decision d = decide(*p, with);
      if (d != Decision::ask_roster) {
        *archive = d == Decision::archive;
        return Incoming::now;
      }
    }
    if (loop.held >= max_held_) {
      // Too many held on this loop: decided as the default would, now.
      *archive = defaults_.default_mode != Mode::never;
      return Incoming::now;
    }
    waiting = loop.waiting.emplace(owner, Owner{}).first;
    waiting->second.held.push_back(Held{std::string(with), message.clone()});
    ++loop.held;
    release_held(owner, std::move(release));
    return Incoming::held;
  }
  // Behind the owner's messages held already, in order; unless the loop holds all it
  // may (the bound is for everything held, this owner's too).
  if (loop.held >= max_held_) return Incoming::refused;
  waiting->second.held.push_back(Held{std::string(with), message.clone()});
  ++loop.held;
  return Incoming::held;
}

void MamPrefs::let_pass(const std::string& owner, std::string_view with) {
  loops_.here().verdicts[verdict_key(owner, with)].push_back(false);
}

// Decides the owner's held messages in order, releasing each, until none is left
// (more may arrive meanwhile). A decision that completes at once (the preferences are
// known now) goes on in this loop, not by recursion: with up to max_held_ messages held,
// each release routing its message through the hooks, recursion could overflow the
// loop thread's stack. One that completes later (a roster question) starts it again.
void MamPrefs::release_held(const std::string& owner, Release release) {
  struct Step {
    bool inside = true;    // resolve() has not returned yet
    bool decided = false;  // its completion ran while inside
  };
  for (;;) {
    auto& waiting = loops_.here().waiting;
    auto it = waiting.find(owner);
    if (it == waiting.end()) return;
    if (it->second.held.empty()) {
      waiting.erase(it);
      return;
    }
    const std::string with = it->second.held.front().with;
    auto step = std::make_shared<Step>();
    resolve(owner, with, [this, owner, release, step](bool yes) {
      Loop& loop = loops_.here();
      auto it = loop.waiting.find(owner);
      if (it != loop.waiting.end() && !it->second.held.empty()) {
        Held h = std::move(it->second.held.front());
        it->second.held.pop_front();
        --loop.held;
        if (!yes) loop.verdicts[verdict_key(owner, h.with)].push_back(false);
        release(std::move(h.message), yes);
      }
      if (step->inside) {
        step->decided = true;
        return;
      }
      release_held(owner, release);
    });
    step->inside = false;
    if (!step->decided) return;  // completes later, and goes on from there
  }
}

}  // namespace parley::mod_mam
