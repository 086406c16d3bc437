// mod_presence: what the module knows of each session, kept in the session's
// slot (owned by the session's loop, freed with the session); the presence
// of a user's sessions, read on their own loops; and that state across a hot
// reload.
#include <charconv>
#include <utility>

#include "mod_presence.hpp"

namespace mod_presence {

namespace {

void free_presence(void* p) {
  auto* s = static_cast<SessionPresence*>(p);
  s->self->forget(s);
  delete s;
}

std::optional<uint64_t> number(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

}  // namespace

SessionPresence* ModPresence::slot(parley_session_id id, std::string_view full) {
  if (id == 0) return nullptr;
  if (auto* existing = host().session_slot<SessionPresence>(id)) return existing;
  if (full.empty()) return nullptr;
  auto fresh = std::make_unique<SessionPresence>();
  fresh->self = this;
  fresh->id = id;
  fresh->full = std::string(full);
  SessionPresence* raw = fresh.get();
  if (!host().session_set_data(id, raw, &free_presence)) return nullptr;  // not on this loop
  fresh.release();
  here().sessions[id] = raw;
  tracked_.add(1);
  return raw;
}

std::string compact_presence(const parley::ElementView& presence) {
  std::string bytes = presence.serialize();
  bytes.shrink_to_fit();  // kept for the session's life: no slack from the sink's growth
  return bytes;
}

// The host frees a slot on its session's loop: when the session ends, and
// before an unload or a reload (the state then travels through save_state).
void ModPresence::forget(SessionPresence* s) {
  const int32_t loop = parley::current_loop(host());
  if (loop < 0 || static_cast<uint32_t>(loop) >= loops_.size()) return;
  loops_.at(static_cast<uint32_t>(loop)).sessions.erase(s->id);
  tracked_.record(-1);
}

void ModPresence::each_presence(const std::string& bare, const std::string& except,
                                std::function<void(parley::Element)> each, std::function<void(std::size_t)> done) {
  struct Gather {
    std::size_t left = 0;
    std::size_t found = 0;
    std::function<void(parley::Element)> each;
    std::function<void(std::size_t)> done;
  };
  std::vector<parley_session_id> ids;
  for (const auto& s : host().user_sessions(bare))
    if (s.full_jid != except) ids.push_back(s.id);
  if (ids.empty()) {
    if (done) done(0);
    return;
  }
  // Touched on this loop only: every answer is posted back here.
  auto gather = std::make_shared<Gather>(Gather{ids.size(), 0, std::move(each), std::move(done)});
  auto finish = [gather](std::shared_ptr<parley::Element> presence) {
    if (presence) {
      ++gather->found;
      if (gather->each) gather->each(std::move(*presence));
    }
    if (--gather->left == 0 && gather->done) gather->done(gather->found);
  };
  const auto here_loop = static_cast<uint32_t>(parley::current_loop(host()));
  for (parley_session_id id : ids) {
    const bool posted = parley::post_to_session(host(), id, [this, id, here_loop, finish] {
      std::shared_ptr<parley::Element> copy;
      if (SessionPresence* s = slot(id); s != nullptr && s->available && !s->last.empty())
        if (auto parsed = host().parse(s->last)) copy = std::make_shared<parley::Element>(std::move(*parsed));
      if (!parley::post(host(), here_loop, [finish, copy] { finish(copy); })) finish(nullptr);
    });
    if (!posted) finish(nullptr);  // the session is gone
  }
}

// Hot reload: the sessions' presence and directed recipients, as bytes. It
// runs while every entry point of the module is paused: the loops' indexes
// are read from here without a race.
parley::Result<std::string, std::string> ModPresence::save_state() {
  std::vector<std::string> fields{"mod_presence/1"};
  for (uint32_t loop = 0; loop < loops_.size(); ++loop) {
    for (const auto& [id, s] : loops_.at(loop).sessions) {
      fields.push_back(std::to_string(id));
      fields.push_back(s->full);
      fields.push_back(s->available ? "1" : "0");
      fields.push_back(s->last);
      fields.push_back(std::to_string(s->directed.size()));
      for (const std::string& jid : s->directed.jids()) fields.push_back(jid);
    }
  }
  return encode_fields(fields);
}

// Each session's part goes to its loop, which makes the session's slot of
// the new code (a session that ended meanwhile is not found).
parley::Result<void, std::string> ModPresence::restore_state(std::string_view bytes) {
  if (bytes.empty()) return {};
  auto fields = decode_fields(bytes);
  if (!fields || fields->empty() || (*fields)[0] != "mod_presence/1")
    return parley::unexpected(std::string("unknown mod_presence state format"));
  struct Saved {
    std::string full;
    bool available = false;
    std::string last;
    std::vector<std::string> directed;
  };
  std::vector<std::pair<parley_session_id, std::shared_ptr<Saved>>> sessions;
  const std::vector<std::string>& f = *fields;
  for (std::size_t i = 1; i < f.size();) {
    if (i + 5 > f.size()) return parley::unexpected(std::string("truncated mod_presence state"));
    auto id = number(f[i]);
    auto n = number(f[i + 4]);
    if (!id || !n) return parley::unexpected(std::string("malformed mod_presence state"));
    auto saved = std::make_shared<Saved>();
    saved->full = f[i + 1];
    saved->available = f[i + 2] == "1";
    saved->last = f[i + 3];
    i += 5;
    if (*n > f.size() - i) return parley::unexpected(std::string("truncated mod_presence state"));
    saved->directed.assign(f.begin() + static_cast<std::ptrdiff_t>(i),
                           f.begin() + static_cast<std::ptrdiff_t>(i + *n));
    i += *n;
    sessions.emplace_back(*id, std::move(saved));
  }
  for (auto& [id, saved] : sessions) {
    parley::post_to_session(host(), id, [this, id = id, saved = saved] {
      SessionPresence* s = slot(id, saved->full);
      if (s == nullptr) return;
      s->available = saved->available;
      if (!saved->last.empty())
        if (auto parsed = host().parse(saved->last)) s->last = compact_presence(*parsed);
      for (const std::string& jid : saved->directed) s->directed.add(jid);
    });
  }
  return {};
}

}  // namespace mod_presence
