// mod_adhoc: the message of the day (XEP-0133 4.24-4.26) and the welcome
// message (4.27-4.28) in the keyval store (issue 11), and the message of the
// day at each user's next login.
//
// Per-host values are kept under the reserved user "@" (host_user: no
// localpart holds an '@', RFC 7622 3.3.1, so no account's keys meet them):
//   "@"  "motd"       "ID\nTEXT"  the message of the day; ID changes with each
//                                 set-motd (edit-motd keeps it)
//   "@"  "welcome"    TEXT        sent to each new account
//   user "motd_sent"  ID          the message of the day this user had
// A set-motd is due to everyone again by its new ID alone (no list of those
// who had it to empty); a user's marker is removed with the account.
//
// The tables of before (mod_adhoc_motd, mod_adhoc_motd_sent,
// mod_adhoc_welcome) are moved in at start (the moved message of the day gets
// ID "0", as do the markers of those who had it), then dropped; every
// operation waits for that (OldTables).
#include <chrono>
#include <functional>
#include <utility>

#include "mod_adhoc.hpp"

namespace parley::mod_adhoc {

namespace {

constexpr const char* key_motd = "motd";
constexpr const char* key_welcome = "welcome";
constexpr const char* key_motd_sent = "motd_sent";

}  // namespace

std::string encode_motd(const Motd& motd) { return motd.id + "\n" + motd.text; }

std::optional<Motd> decode_motd(std::string_view value) {
  const size_t cut = value.find('\n');
  if (cut == std::string_view::npos || cut == 0) return std::nullopt;
  return Motd{std::string(value.substr(0, cut)), std::string(value.substr(cut + 1))};
}

// Microseconds since the epoch: a set-motd's id, new for every set (two sets
// in one microsecond cannot both reach here: each is an admin's round trip).
std::string new_motd_id() {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

void ModAdhoc::start_store() {
  move_.start(host(),
              {OldTables::Move{"mod_adhoc_motd",
                               "SELECT '@', 'motd', '0' || char(10) || text FROM mod_adhoc_motd WHERE host = ?1",
                               "DELETE FROM mod_adhoc_motd WHERE host = ?1"},
               OldTables::Move{"mod_adhoc_motd_sent",
                               "SELECT user, 'motd_sent', '0' FROM mod_adhoc_motd_sent WHERE host = ?1",
                               "DELETE FROM mod_adhoc_motd_sent WHERE host = ?1"},
               OldTables::Move{"mod_adhoc_welcome",
                               "SELECT '@', 'welcome', text FROM mod_adhoc_welcome WHERE host = ?1",
                               "DELETE FROM mod_adhoc_welcome WHERE host = ?1"}});
  marking_.init(host());
}

void ModAdhoc::host_get(std::string key, std::function<void(Result<std::optional<std::string>, std::string>)> done) {
  move_.when_ready(host(), [this, key = std::move(key), done = std::move(done)] {
    bool sent = host().keyval_get(host_user, key, [this, key, done](Result<KeyvalResult, std::string> r) {
      if (!r) {
        host().error("event=storage_error what=" + key + "_read error=\"" + r.error() + "\"");
        return done(unexpected(r.error()));
      }
      done(r->found() ? std::optional<std::string>(std::string(r->value())) : std::nullopt);
    });
    if (!sent) done(unexpected(std::string("internal-server-error")));
  });
}

void ModAdhoc::host_put(std::string key, std::string value, std::function<void(bool)> done) {
  move_.when_ready(host(), [this, key = std::move(key), value = std::move(value), done = std::move(done)] {
    bool sent = host().keyval_put(host_user, key, value, [this, key, done](Result<KeyvalResult, std::string> r) {
      if (!r) host().error("event=storage_error what=" + key + "_write error=\"" + r.error() + "\"");
      done(r.has_value());
    });
    if (!sent) done(false);
  });
}

void ModAdhoc::host_remove(std::string key, std::function<void(bool)> done) {
  move_.when_ready(host(), [this, key = std::move(key), done = std::move(done)] {
    bool sent = host().keyval_remove(host_user, key, [this, key, done](Result<KeyvalResult, std::string> r) {
      if (!r) host().error("event=storage_error what=" + key + "_delete error=\"" + r.error() + "\"");
      done(r.has_value());
    });
    if (!sent) done(false);
  });
}

void ModAdhoc::read_motd(std::function<void(Result<std::optional<Motd>, std::string>)> done) {
  host_get(key_motd, [done = std::move(done)](Result<std::optional<std::string>, std::string> value) {
    if (!value) return done(unexpected(value.error()));
    done(*value ? decode_motd(**value) : std::nullopt);
  });
}

void ModAdhoc::write_motd(const Motd& motd, std::function<void(bool)> done) {
  host_put(key_motd, encode_motd(motd), std::move(done));
}

void ModAdhoc::delete_motd_value(std::function<void(bool)> done) { host_remove(key_motd, std::move(done)); }

void ModAdhoc::read_welcome(std::function<void(Result<std::optional<std::string>, std::string>)> done) {
  host_get(key_welcome, std::move(done));
}

void ModAdhoc::write_welcome(std::string text, std::function<void(bool)> done) {
  host_put(key_welcome, std::move(text), std::move(done));
}

void ModAdhoc::delete_welcome(std::function<void(bool)> done) { host_remove(key_welcome, std::move(done)); }

// ---- the message of the day at login ----

namespace {

// The session a presence came from has had its first available presence
// (the message of the day is looked at once per session).
struct PresenceSeen {};

}  // namespace

parley_result ModAdhoc::on_presence(const Event& event) {
  auto stanza = event.stanza();
  if (!stanza || event.session() == 0 || stanza->has_attr("to")) return PARLEY_PASS;
  auto type = stanza->attr("type");
  if (type && !type->empty()) return PARLEY_PASS;  // only an available presence
  if (host().session_slot<PresenceSeen>(event.session()) != nullptr) return PARLEY_PASS;
  host().set_session_slot(event.session(), std::make_unique<PresenceSeen>());
  const uint64_t generation = motd_generation_.load();
  if (no_motd_at_.load() == generation) return PARLEY_PASS;  // none is set: no read
  std::string full(event.jid());
  parley_session_id session = event.session();
  read_motd([this, full, session, generation](Result<std::optional<Motd>, std::string> motd) {
    if (!motd) return;  // logged
    if (!*motd) return no_motd_at_.store(generation);
    send_motd_to(session, full, **motd);
  });
  return PARLEY_PASS;
}

// Once per user and message: on the loop that owns the user (a hash of the
// localpart), the marker is read and, if it is not this message's, written
// before the message goes out; two logins of one user at once are decided
// there (the second finds the first at it and sends nothing, as the first
// sends it), so it goes out once.
void ModAdhoc::send_motd_to(parley_session_id session, const std::string& full_jid, const Motd& motd) {
  std::string user(full_jid.substr(0, full_jid.find('@')));
  if (user.empty() || user.size() == full_jid.size()) return;
  const auto owner = static_cast<uint32_t>(std::hash<std::string>{}(user) % marking_.size());
  auto mark = [this, session, full_jid, motd, user] { mark_motd(session, full_jid, motd, user); };
  if (current_loop(host()) == static_cast<int32_t>(owner)) return mark();
  if (!post(host(), owner, std::move(mark))) host().error("cannot post to loop " + std::to_string(owner));
}

// On the user's owner loop (the keyval completions come back to it).
void ModAdhoc::mark_motd(parley_session_id session, const std::string& full_jid, const Motd& motd,
                         const std::string& user) {
  auto [it, fresh] = marking_.here().emplace(user, motd.id);
  if (!fresh) {
    if (it->second == motd.id) return;  // another login of the user is sending it
    it->second = motd.id;
  }
  auto finish = [this, user, id = motd.id] {
    auto found = marking_.here().find(user);
    if (found != marking_.here().end() && found->second == id) marking_.here().erase(found);
  };
  move_.when_ready(host(), [this, session, full_jid, motd, user, finish] {
    auto had_it = [this, session, full_jid, motd, user, finish](Result<KeyvalResult, std::string> had) {
      if (!had) {
        host().error("event=storage_error what=motd_sent_read error=\"" + had.error() + "\"");
        return finish();
      }
      if (had->found() && had->value() == motd.id) return finish();  // this user had it
      auto marked = [this, session, full_jid, motd, finish](Result<KeyvalResult, std::string> r) {
        finish();
        if (!r) return host().error("event=storage_error what=motd_sent error=\"" + r.error() + "\"");
        Element message = host().element("message", "jabber:client");
        message.set_attr("from", domain_).set_attr("to", full_jid);
        message.add_child("subject", "jabber:client").add_text("Message of the Day");
        message.add_child("body", "jabber:client").add_text(motd.text);
        host().send_to_session(session, std::move(message));
      };
      if (!host().keyval_put(user, key_motd_sent, motd.id, std::move(marked))) finish();
    };
    if (!host().keyval_get(user, key_motd_sent, std::move(had_it))) finish();
  });
}

// After the move of old markers (one moved later would come back).
void ModAdhoc::on_user_removed(const Event& event) {
  std::string user(event.user());
  if (user.empty()) return;
  move_.when_ready(host(), [this, user] {
    host().keyval_remove_user(user, [this](Result<KeyvalResult, std::string> r) {
      if (!r) host().error("event=storage_error what=motd_forget error=\"" + r.error() + "\"");
    });
  });
}

}  // namespace parley::mod_adhoc
