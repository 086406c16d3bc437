#include "core/server/admin_commands.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <set>

#include "core/addr/jid.hpp"
#include "core/c2s/c2s_stream.hpp"
#include "core/control/json_text.hpp"
#include "core/net/connection.hpp"
#include "core/router/router.hpp"
#include "core/server/server_context.hpp"
#include "core/session/session.hpp"
#include "core/stanza/stanza_log.hpp"
#include "core/tls/stream.hpp"
#include "storage/account_store.hpp"

namespace parley {

namespace {

using control::JsonObject;
using control::take_json_flag;
using control::Reply;

uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string iso_utc(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Runs `per_loop` on every worker loop (each on its own thread, with its own
// LoopContext), then `done` on the main loop with the parts in loop order.
template <class T>
void on_every_loop(ServerContext& ctx, WorkerLoop& main, std::function<T(LoopContext&)> per_loop,
                   std::function<void(std::vector<T>)> done) {
  struct Gather {
    size_t pending;
    std::vector<T> parts;
    std::function<void(std::vector<T>)> done;
  };
  auto gather = std::make_shared<Gather>(Gather{ctx.loops.size(), std::vector<T>(ctx.loops.size()), std::move(done)});
  if (gather->pending == 0) return gather->done({});
  auto fn = std::make_shared<const std::function<T(LoopContext&)>>(std::move(per_loop));
  WorkerLoop* main_loop = &main;
  for (size_t i = 0; i < ctx.loops.size(); ++i) {
    LoopContext* lc = ctx.loops[i].get();
    lc->loop.post([lc, i, fn, gather, main_loop] {
      T part = (*fn)(*lc);
      main_loop->post([i, gather, part = std::move(part)]() mutable {
        gather->parts[i] = std::move(part);
        if (--gather->pending == 0) gather->done(std::move(gather->parts));
      });
    });
  }
}

// What connected-users-info and user-sessions say of one session, read on its loop.
struct SessionInfo {
  std::string jid;
  std::string host;
  std::string state;      // "bound", or "detached" (kept for resumption, no connection)
  std::string ip;
  std::string transport;  // "tcp" (STARTTLS or direct TLS), "websocket" or "bosh"; "-" when detached
  std::string tls;        // "TLSv1.3", "none"
  int64_t connected_since = 0;  // unix seconds; 0 when detached
  int64_t idle_seconds = -1;    // since the last bytes read; -1 when detached
  int priority = 0;
  bool available = false;
};

SessionInfo describe(Session& session, LoopContext& lc) {
  SessionInfo info;
  info.jid = session.jid().full();
  info.host = session.jid().domain();
  info.priority = session.priority();
  info.available = session.available();
  info.ip = session.peer_ip();
  if (C2sStream* stream = session.stream()) {
    const Connection& conn = stream->connection();
    info.state = "bound";
    info.transport = conn.bosh() ? "bosh" : conn.websocket() ? "websocket" : "tcp";
    info.tls = conn.tls() && conn.secure() ? conn.tls()->protocol() : "none";
    int64_t now_s = static_cast<int64_t>(uv_now(lc.loop.uv()) / 1000);
    int64_t unix_now = static_cast<int64_t>(std::time(nullptr));
    info.connected_since = unix_now - (now_s - static_cast<int64_t>(conn.connected_s()));
    info.idle_seconds = std::max<int64_t>(0, now_s - static_cast<int64_t>(conn.last_read_s()));
  } else {
    info.state = "detached";
    info.transport = "-";
    info.tls = "-";
  }
  return info;
}

std::string info_json(const SessionInfo& s) {
  JsonObject o;
  o.str("jid", s.jid).str("state", s.state).str("ip", s.ip).str("transport", s.transport).str("tls", s.tls);
  if (s.connected_since > 0)
    o.str("connected_since", iso_utc(s.connected_since));
  else
    o.raw("connected_since", "null");
  if (s.idle_seconds >= 0)
    o.num("idle_seconds", s.idle_seconds);
  else
    o.raw("idle_seconds", "null");
  o.num("priority", s.priority).boolean("available", s.available);
  return o.text();
}

std::string info_line(const SessionInfo& s) {
  return fmt::format("{}\t{}\t{}\t{}\t{}\t{}\tpriority={}\t{}\n", s.jid, s.ip, s.transport, s.tls,
                     s.connected_since > 0 ? iso_utc(s.connected_since) : "-",
                     s.idle_seconds >= 0 ? fmt::format("idle={}s", s.idle_seconds) : "idle=-", s.priority,
                     s.state == "detached" ? "detached" : (s.available ? "available" : "unavailable"));
}

// The sessions of the loop for which `want` says yes.
std::vector<SessionInfo> sessions_here(LoopContext& lc, const std::function<bool(const Session&)>& want) {
  std::vector<SessionInfo> out;
  for (auto& [id, session] : lc.sessions)
    if (session->online() && want(*session)) out.push_back(describe(*session, lc));
  return out;
}

void reply_sessions(std::vector<std::vector<SessionInfo>> parts, bool json, Reply reply) {
  std::vector<SessionInfo> all;
  for (auto& part : parts)
    for (auto& s : part) all.push_back(std::move(s));
  std::sort(all.begin(), all.end(), [](const SessionInfo& a, const SessionInfo& b) { return a.jid < b.jid; });
  std::string body;
  if (json) {
    std::vector<std::string> items;
    for (const auto& s : all) items.push_back(info_json(s));
    body = control::json_array(items) + "\n";
  } else {
    for (const auto& s : all) body += info_line(s);
  }
  reply(true, std::move(body));
}

// USER HOST as a bare JID of a served host; the error text otherwise.
Result<Jid, std::string> served_account(const ServerContext& ctx, const std::string& user, const std::string& host) {
  auto jid = Jid::make(user, host);
  if (!jid || !jid->has_local()) return unexpected("Invalid user '" + user + "@" + host + "'");
  if (!ctx.is_local_host(jid->domain())) return unexpected("Unknown host '" + jid->domain() + "'");
  return std::move(*jid);
}

}  // namespace

bool valid_log_level(const std::string& level) {
  static constexpr const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  for (const char* l : kLevels)
    if (level == l) return true;
  return false;
}

void add_admin_commands(control::ControlServer& control, AdminCommandsDeps deps) {
  ServerContext* ctx = &deps.ctx;
  WorkerLoop* main = &deps.main;
  const uint64_t* started_at_ms = deps.started_at_ms;

  control.add_command(
      "connected-users-info", "[--json] every session: JID, IP, transport, TLS, connected since, idle, priority",
      [ctx, main](std::vector<std::string> args, Reply reply) {
        bool json = take_json_flag(args);
        if (args.size() != 1) return reply(false, "usage: connected-users-info [--json]");
        on_every_loop<std::vector<SessionInfo>>(
            *ctx, *main, [](LoopContext& lc) { return sessions_here(lc, [](const Session&) { return true; }); },
            [json, reply](std::vector<std::vector<SessionInfo>> parts) { reply_sessions(std::move(parts), json, reply); });
      });

  control.add_command("user-sessions", "USER HOST [--json]: the sessions of one account, as connected-users-info",
                      [ctx, main](std::vector<std::string> args, Reply reply) {
                        bool json = take_json_flag(args);
                        if (args.size() != 3) return reply(false, "usage: user-sessions USER HOST [--json]");
                        auto account = served_account(*ctx, args[1], args[2]);
                        if (!account) return reply(false, account.error());
                        std::string bare = account->bare_str();
                        on_every_loop<std::vector<SessionInfo>>(
                            *ctx, *main,
                            [bare](LoopContext& lc) {
                              return sessions_here(lc, [&bare](const Session& s) { return s.jid().bare_str() == bare; });
                            },
                            [json, reply](std::vector<std::vector<SessionInfo>> parts) {
                              reply_sessions(std::move(parts), json, reply);
                            });
                      });

  control.add_command(
      "kick", "USER HOST [RESOURCE]: close the account's sessions (one resource, or all) with a stream error",
      [ctx, main](std::vector<std::string> args, Reply reply) {
        if (args.size() != 3 && args.size() != 4) return reply(false, "usage: kick USER HOST [RESOURCE]");
        auto account = served_account(*ctx, args[1], args[2]);
        if (!account) return reply(false, account.error());
        std::string bare = account->bare_str();
        std::string resource;
        if (args.size() == 4) {
          auto full = Jid::make(account->local(), account->domain(), args[3]);
          if (!full || full->resource().empty()) return reply(false, "Invalid resource '" + args[3] + "'");
          resource = full->resource();
        }
        on_every_loop<std::vector<std::string>>(
            *ctx, *main,
            [bare, resource](LoopContext& lc) {
              std::vector<Session*> victims;
              for (auto& [id, session] : lc.sessions)
                if (session->online() && session->jid().bare_str() == bare &&
                    (resource.empty() || session->jid().resource() == resource))
                  victims.push_back(session.get());
              std::vector<std::string> kicked;
              // The stream error RFC 6120 §4.9.3.14 gives for an administrator's decision.
              for (Session* s : victims) {
                kicked.push_back(s->jid().full());
                s->close("policy-violation", "kicked by an administrator");
              }
              return kicked;
            },
            [reply, bare, resource](std::vector<std::vector<std::string>> parts) {
              std::vector<std::string> kicked;
              for (auto& p : parts) kicked.insert(kicked.end(), p.begin(), p.end());
              if (kicked.empty())
                return reply(false, "No session of " + bare + (resource.empty() ? "" : "/" + resource));
              std::sort(kicked.begin(), kicked.end());
              std::string body;
              for (const auto& jid : kicked) body += "kicked " + jid + "\n";
              spdlog::info("control: kicked {} session(s) of {}", kicked.size(), bare);
              reply(true, std::move(body));
            });
      });

  control.add_command(
      "stats", "[--json] registered users, online users, sessions per host, uptime",
      [ctx, main, started_at_ms](std::vector<std::string> args, Reply reply) {
        bool json = take_json_flag(args);
        if (args.size() != 1) return reply(false, "usage: stats [--json]");
        std::vector<std::string> hosts(ctx->hosts.begin(), ctx->hosts.end());
        struct Stats {
          std::map<std::string, int64_t> registered;
          std::map<std::string, int64_t> sessions;
          std::map<std::string, std::set<std::string>> online;
          std::string error;
        };
        auto stats = std::make_shared<Stats>();
        // The accounts are counted on a storage reader, the sessions on their loops.
        auto count_sessions = [ctx, main, stats, hosts, json, reply, started_at_ms] {
          if (!stats->error.empty()) return reply(false, stats->error);
          using Part = std::vector<std::pair<std::string, std::string>>;  // (host, bare)
          on_every_loop<Part>(
              *ctx, *main,
              [](LoopContext& lc) {
                Part part;
                for (auto& [id, session] : lc.sessions)
                  if (session->online()) part.emplace_back(session->jid().domain(), session->jid().bare_str());
                return part;
              },
              [stats, hosts, json, reply, started_at_ms](std::vector<Part> parts) {
                for (auto& part : parts)
                  for (auto& [host, bare] : part) {
                    ++stats->sessions[host];
                    stats->online[host].insert(bare);
                  }
                int64_t uptime = static_cast<int64_t>((steady_ms() - *started_at_ms) / 1000);
                int64_t registered = 0, online = 0, sessions = 0;
                for (const auto& h : hosts) {
                  registered += stats->registered[h];
                  online += static_cast<int64_t>(stats->online[h].size());
                  sessions += stats->sessions[h];
                }
                std::string body;
                if (json) {
                  JsonObject per_host;
                  for (const auto& h : hosts) {
                    JsonObject o;
                    o.num("registered_users", stats->registered[h])
                        .num("online_users", static_cast<int64_t>(stats->online[h].size()))
                        .num("sessions", stats->sessions[h]);
                    per_host.raw(h, o.text());
                  }
                  JsonObject top;
                  top.num("uptime_seconds", uptime)
                      .num("registered_users", registered)
                      .num("online_users", online)
                      .num("sessions", sessions)
                      .raw("hosts", per_host.text());
                  body = top.text() + "\n";
                } else {
                  body = fmt::format("uptime_seconds: {}\nregistered_users: {}\nonline_users: {}\nsessions: {}\n", uptime,
                                     registered, online, sessions);
                  for (const auto& h : hosts)
                    body += fmt::format("{}.registered_users: {}\n{}.online_users: {}\n{}.sessions: {}\n", h,
                                        stats->registered[h], h, stats->online[h].size(), h, stats->sessions[h]);
                }
                reply(true, std::move(body));
              });
        };
        // Through the account store (issue 11): the accounts may be on PostgreSQL.
        ctx->accounts->read([stats, hosts, main, count_sessions](storage::AccountBackend& db) {
          std::map<std::string, int64_t> counts;
          std::string error;
          for (const auto& h : hosts) {
            auto users = db.list_users(h);
            if (!users) {
              error = "Database error: " + users.error().message;
              break;
            }
            counts[h] = static_cast<int64_t>(users->size());
          }
          main->post([stats, counts = std::move(counts), error = std::move(error), count_sessions]() mutable {
            stats->registered = std::move(counts);
            stats->error = std::move(error);
            count_sessions();
          });
        });
      });

  control.add_command(
      "send-message", "FROM TO BODY: send a chat message as FROM (a JID of a served host)",
      [ctx](std::vector<std::string> args, Reply reply) {
        if (args.size() != 4) return reply(false, "usage: send-message FROM TO BODY");
        auto from = Jid::parse(args[1]);
        if (!from || !ctx->is_local_host(from->domain()))
          return reply(false, "FROM must be a JID of a served host: '" + args[1] + "'");
        auto to = Jid::parse(args[2]);
        if (!to) return reply(false, "Invalid TO '" + args[2] + "'");
        xml::Element message("message", "jabber:client");
        message.set_attr("from", from->full());
        message.set_attr("to", to->full());
        message.set_attr("type", "chat");
        message.set_attr("id", fmt::format("parleyctl-{}", steady_ms()));
        message.add_child("body", "jabber:client").add_text(args[3]);
        // Routed from a worker loop, as a stanza of a session there would be.
        LoopContext* lc = ctx->loops.front().get();
        Router* router = ctx->router;
        lc->loop.post([router, lc, message = std::move(message), from = std::move(*from), to = std::move(*to)]() mutable {
          router->route(std::move(message), from, to, lc->loop.index());
        });
        reply(true, "Message sent to " + args[2] + "\n");
      });

  control.add_command("set-loglevel", "LEVEL: trace, debug, info, warn, error, critical or off (until a restart)",
                      [](std::vector<std::string> args, Reply reply) {
                        if (args.size() != 2 || !valid_log_level(args[1]))
                          return reply(false, "usage: set-loglevel trace|debug|info|warn|error|critical|off");
                        parley::set_log_level(spdlog::level::from_str(args[1]));
                        spdlog::warn("control: log level is now {}", args[1]);
                        reply(true, "log level is now " + args[1] + "\n");
                      });
}

}  // namespace parley
