// core/export/account_import.cpp - import-user (and its parts): see account_data.hpp and
// account_request.hpp.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/addr/jid.hpp"
#include "core/control/account_commands.hpp"
#include "core/export/account_request.hpp"
#include "core/export/pie_reader.hpp"
#include "core/modules/module_accounts.hpp"
#include "core/sasl/base64.hpp"
#include "core/server/log_format.hpp"
#include "core/server/server_context.hpp"
#include "storage/account_store.hpp"
#include "xml/element.hpp"

namespace parley::account_data {
namespace {

Result<std::vector<storage::ScramRecord>, std::string> read_scram(const xml::Element& user) {
  std::vector<storage::ScramRecord> records;
  for (const xml::Element* c : user.children()) {
    if (c->name() != "scram-credentials" || c->xmlns() != pie::kScramNs) continue;
    storage::ScramRecord r;
    r.mechanism = std::string(c->attr("mechanism"));
    size_t key_bytes = r.mechanism == "SCRAM-SHA-1" ? 20 : r.mechanism == "SCRAM-SHA-256" ? 32 : 0;
    if (key_bytes == 0) continue;  // a mechanism Parley does not offer (SCRAM-SHA-512, ...): skipped
    auto text = [&](std::string_view name) { return c->child_text(name, pie::kScramNs); };
    std::string iter = text("iter-count");
    uint64_t n = 0;
    bool digits = !iter.empty() && iter.size() <= 9 && std::all_of(iter.begin(), iter.end(), [](char ch) {
      return ch >= '0' && ch <= '9';
    });
    if (digits) n = std::stoull(iter);
    if (!digits || n == 0) return unexpected("bad <iter-count/> in " + r.mechanism + " credentials");
    r.iterations = static_cast<uint32_t>(n);
    auto salt = sasl::base64_decode(text("salt"));
    auto server_key = sasl::base64_decode(text("server-key"));
    auto stored_key = sasl::base64_decode(text("stored-key"));
    if (!salt || salt->empty()) return unexpected("bad <salt/> in " + r.mechanism + " credentials");
    if (!server_key || server_key->size() != key_bytes || !stored_key || stored_key->size() != key_bytes)
      return unexpected("bad keys in " + r.mechanism + " credentials");
    r.salt = std::move(*salt);
    r.server_key = std::move(*server_key);
    r.stored_key = std::move(*stored_key);
    auto same = std::find_if(records.begin(), records.end(),
                             [&](const storage::ScramRecord& o) { return o.mechanism == r.mechanism; });
    if (same != records.end()) return unexpected("two " + r.mechanism + " credentials");
    records.push_back(std::move(r));
  }
  return records;
}

// ---- import-user DOCUMENT [--replace] [--parts], then import-part DOCUMENT [--last] ----------

// One account's import. With --parts (an account larger than one request: parleyctl
// sends its small parts first, then its archive and offline messages a batch at a time)
// the connection stays open: each further part comes as an import-part request on it, is
// imported on the account, and is answered "continue", the last one "ok"; a part refused,
// or the connection lost before the last, removes the account again with everything
// stored of it (nothing half-imported). The parts' state is the control loop's.
struct Import {
  Jid account;
  std::shared_ptr<xml::Element> user;
  std::optional<std::string> password;
  std::vector<storage::ScramRecord> records;
  bool replace = false;
  bool parts = false;
  std::string credentials;
  std::vector<std::string> summaries;
  size_t requests = 1;
  bool busy = true;  // a part (or the account's creation) is being imported
  bool aborted = false;
  bool ended = false;
};

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// Summaries of several parts as one: "256 archived messages" and "44 archived messages"
// are "300 archived messages"; others are kept as they are, in order.
std::vector<std::string> merged(const std::vector<std::string>& in) {
  struct Counted {
    uint64_t n;
    std::string rest;  // plural if any was
    std::string key;   // rest without the plural 's' of its words
  };
  auto key_of = [](const std::string& rest) {
    std::string key;
    for (size_t i = 0; i < rest.size(); ++i)
      if (!(rest[i] == 's' && (i + 1 == rest.size() || rest[i + 1] == ' '))) key += rest[i];
    return key;
  };
  std::vector<std::variant<std::string, Counted>> out;
  for (const auto& s : in) {
    size_t digits = 0;
    while (digits < s.size() && digits < 18 && s[digits] >= '0' && s[digits] <= '9') ++digits;
    if (digits == 0 || digits == s.size() || s[digits] != ' ') {
      out.emplace_back(s);
      continue;
    }
    Counted c{std::stoull(s.substr(0, digits)), s.substr(digits), {}};
    c.key = key_of(c.rest);
    auto same = std::find_if(out.begin(), out.end(), [&](const auto& o) {
      return std::holds_alternative<Counted>(o) && std::get<Counted>(o).key == c.key;
    });
    if (same == out.end()) {
      out.emplace_back(std::move(c));
    } else {
      auto& o = std::get<Counted>(*same);
      o.n += c.n;
      if (c.rest.size() > o.rest.size()) o.rest = c.rest;
    }
  }
  std::vector<std::string> text;
  for (const auto& o : out)
    text.push_back(std::holds_alternative<std::string>(o) ? std::get<std::string>(o)
                                                          : std::to_string(std::get<Counted>(o).n) + std::get<Counted>(o).rest);
  return text;
}

// The one <user/> of a document parleyctl sent, within the request bound.
Result<pie::PieUser, std::string> read_document(const ServerContext& ctx, const std::string& document) {
  std::vector<pie::PieUser> users;
  pie::PieLimits limits;
  limits.max_user_bytes = request_bound(ctx);
  auto read = pie::read_pie(
      document,
      [&](pie::PieUser&& u) {
        users.push_back(std::move(u));
        return users.size() <= 1;
      },
      limits);
  if (!read) return unexpected("malformed document: " + read.error().to_string());
  if (users.size() != 1) return unexpected(std::string("the document must hold exactly one <user/>"));
  return std::move(users.front());
}

// The account goes again, and with it (USER_REMOVED) whatever modules stored of it; then
// `then` on the control loop.
void remove_again(ServerContext* c, const Post& post, const Jid& account, std::function<void()> then) {
  c->accounts->write([c, post, account, then](storage::AccountBackend& db) {
    auto r = db.remove_user(account.domain(), account.local());
    if (!r) spdlog::error("event=storage_error what=accounts error={}", log_value(r.error().message));
    post([c, account, then] {
      announce_account_change(*c, account, true);
      if (then) then();
    });
  });
}

void import_part(ServerContext* c, const Post& post, const std::shared_ptr<Import>& imp,
                 const std::shared_ptr<control::Exchange>& exchange, std::vector<std::string> args);

// On the control loop, once a part was imported (or refused).
void part_done(ServerContext* c, const Post& post, const std::shared_ptr<Import>& imp,
               const std::shared_ptr<control::Exchange>& exchange, std::string error,
               std::vector<std::string> summaries, bool last) {
  imp->busy = false;
  const Jid& account = imp->account;
  if (!error.empty() || imp->aborted) {
    imp->ended = true;
    std::string text = account.bare_str() + ": " + error + "; the account was not imported";
    return remove_again(c, post, account, [exchange, text] { exchange->finish(false, text); });
  }
  imp->summaries.insert(imp->summaries.end(), summaries.begin(), summaries.end());
  if (last) {
    imp->ended = true;
    std::vector<std::string> parts{imp->credentials};
    for (auto& s : merged(imp->summaries)) parts.push_back(std::move(s));
    std::string text = "imported " + account.bare_str() + ": " + joined(parts);
    if (imp->parts) text += " (in " + std::to_string(imp->requests) + " requests)";
    return exchange->finish(true, text);
  }
  exchange->continue_with("part " + std::to_string(imp->requests) + " of " + account.bare_str() + " imported",
                          [c, post, imp, exchange](std::vector<std::string> args) {
                            import_part(c, post, imp, exchange, std::move(args));
                          });
}

void run_import(ServerContext* c, const Post& post, const std::shared_ptr<Import>& imp,
                const std::shared_ptr<control::Exchange>& exchange, std::shared_ptr<xml::Element> user, bool last) {
  run_import_request(*c, imp->account, std::move(user),
                     [c, post, imp, exchange, last](std::string error, std::vector<std::string> summaries) {
                       post([c, post, imp, exchange, last, error = std::move(error),
                             summaries = std::move(summaries)]() mutable {
                         part_done(c, post, imp, exchange, std::move(error), std::move(summaries), last);
                       });
                     });
}

void import_part(ServerContext* c, const Post& post, const std::shared_ptr<Import>& imp,
                 const std::shared_ptr<control::Exchange>& exchange, std::vector<std::string> args) {
  imp->busy = true;
  bool last = args.size() == 3 && args[2] == "--last";
  if (args[0] != "import-part" || (args.size() != 2 && !last))
    return part_done(c, post, imp, exchange, "usage: import-part DOCUMENT [--last]", {}, true);
  auto u = read_document(*c, args[1]);
  if (!u) return part_done(c, post, imp, exchange, u.error(), {}, true);
  auto jid = Jid::make(u->name, u->host);
  if (!jid || jid->bare_str() != imp->account.bare_str())
    return part_done(c, post, imp, exchange, "a part of another account ('" + u->name + "@" + u->host + "')", {}, true);
  ++imp->requests;
  auto user = std::make_shared<xml::Element>(std::move(u->user));
  // <scram-credentials/> after more than a part's worth of archive come in a later
  // part: stored then (the account has had none, or those of the earlier parts, so
  // far), unless the first part's password won (as it wins over them in one part).
  auto later = read_scram(*user);
  if (!later) return part_done(c, post, imp, exchange, later.error(), {}, true);
  if (later->empty() || imp->password) return run_import(c, post, imp, exchange, std::move(user), last);
  for (auto& r : *later) {
    auto same = std::find_if(imp->records.begin(), imp->records.end(),
                             [&](const storage::ScramRecord& o) { return o.mechanism == r.mechanism; });
    if (same != imp->records.end())
      return part_done(c, post, imp, exchange, "two " + r.mechanism + " credentials", {}, true);
    imp->records.push_back(std::move(r));
  }
  c->accounts->write([c, post, imp, exchange, user, last, account = imp->account,
                      records = imp->records](storage::AccountBackend& db) {
    auto set = db.set_credentials(account.domain(), account.local(), records);
    std::string error = !set ? "database error: " + set.error().message : !*set ? "the account is gone" : "";
    post([c, post, imp, exchange, user, last, error, count = records.size()]() mutable {
      if (!error.empty()) return part_done(c, post, imp, exchange, error, {}, true);
      imp->credentials = std::to_string(count) + " SCRAM records";
      run_import(c, post, imp, exchange, std::move(user), last);
    });
  });
}

}  // namespace

void import_user(ServerContext& ctx, const Post& post, std::vector<std::string> args,
                 std::shared_ptr<control::Exchange> exchange) {
  auto reply = [exchange](bool ok, std::string text) { exchange->finish(ok, std::move(text)); };
  bool parts = false, replace = false, bad = args.size() < 2;
  for (size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--replace" && !replace)
      replace = true;
    else if (args[i] == "--parts" && !parts)
      parts = true;
    else
      bad = true;
  }
  if (bad) return reply(false, "usage: import-user DOCUMENT [--replace] [--parts]");
  auto u = read_document(ctx, args[1]);
  if (!u) return reply(false, u.error());
  auto jid = Jid::make(u->name, u->host);
  if (!jid || !jid->has_local()) return reply(false, "invalid account '" + u->name + "@" + u->host + "'");
  if (!served(ctx, jid->domain())) return reply(false, jid->bare_str() + ": unknown host '" + jid->domain() + "'");
  auto imp = std::make_shared<Import>();
  imp->account = *jid;
  imp->replace = replace;
  imp->parts = parts;
  if (const std::string* pw = u->user.find_attr("password")) imp->password = *pw;
  auto records = read_scram(u->user);
  if (!records) return reply(false, jid->bare_str() + ": " + records.error());
  imp->records = std::move(*records);
  imp->user = std::make_shared<xml::Element>(std::move(u->user));

  ServerContext* c = &ctx;
  if (parts) {
    // The client gone before the last part: the account goes (now, or once the part
    // being imported is done).
    exchange->on_abort([c, post, imp] {
      if (imp->ended) return;
      imp->aborted = true;
      if (imp->busy) return;
      imp->ended = true;
      remove_again(c, post, imp->account, {});
    });
  }
  ctx.accounts->write([c, post, imp, reply, exchange](storage::AccountBackend& db) {
    const Jid& account = imp->account;
    auto fail = [&](std::string text) {
      post([imp, reply, text] {
        imp->ended = true;
        reply(false, text);
      });
    };
    auto exists = db.user_exists(account.domain(), account.local());
    if (!exists) return fail(account.bare_str() + ": database error: " + exists.error().message);
    bool removed = false;
    if (*exists) {
      if (!imp->replace) {
        std::string text = "skipped " + account.bare_str() + ": the account exists (--replace replaces it)";
        return post([imp, reply, text] {
          imp->ended = true;
          reply(true, text);
        });
      }
      auto r = db.remove_user(account.domain(), account.local());
      if (!r) return fail(account.bare_str() + ": database error: " + r.error().message);
      removed = true;
    }
    if (imp->password) {
      // A plain password: hashed here, both mechanisms (as register does).
      auto created = control::create_account(db, c->config, account.local(), account.domain(), *imp->password);
      if (!created) return fail(account.bare_str() + ": " + created.error().message);
      imp->credentials = "password";
    } else {
      auto created = db.create_user(account.domain(), account.local(), imp->records);
      if (!created) return fail(account.bare_str() + ": database error: " + created.error().message);
      imp->credentials =
          imp->records.empty() ? "no credentials" : std::to_string(imp->records.size()) + " SCRAM records";
    }
    // On the control loop, as register and unregister: modules hear of the removal (they
    // clear the old data, queued on their stores before the import's writes) and of the
    // new account, then the import runs on the first worker loop after both.
    post([c, post, imp, exchange, removed] {
      if (removed) announce_account_change(*c, imp->account, true);
      announce_account_change(*c, imp->account, false);
      auto user = std::move(imp->user);
      run_import(c, post, imp, exchange, std::move(user), !imp->parts);
    });
  });
}

size_t request_bound(const ServerContext& ctx) { return 2 * ctx.config.limits.max_account_part_bytes + 65536; }

}  // namespace parley::account_data
