// parley/sdk/account_query.hpp - asking the other modules what they keep about an
// account (events 27-28, PARLEY_EVENT_ADMIN_USER_QUERY / _ANSWER) without naming them,
// for any module: a presence module asking for the user's roster, an archive asking
// whether a JID is a contact. Header only, over the SDK; no ABI of its own.
//
//   class MyModule : public parley::Module {
//     parley::AccountQuery asks_;   // asks_.init(host(), "my_module") in start()
//     void on_answer(const parley::Event& e) { asks_.on_answer(e); }  // hook of event 28
//     ... asks_.ask("alice", "roster", {{"contact", "bob@example.net"}},
//                   [](parley::AccountQuery::Answers answers) { ... });
//   };
//
// want='roster' is answered by the roster module with a jabber:iq:roster <query/> of the
// account's items (only the item of 'contact', a prepared bare JID, if given; none if
// that is not a contact), read from its store after its last committed change. done runs
// on the asking loop, once: with every answer, with none if no module counted itself in,
// or with what came within the timeout (a module reloaded meanwhile; logged). An answer
// without a payload means the answering module could not read (it logged why).
// Each loop's questions are its own: no lock.
// Part of parley/module.hpp, the one header a module includes; not meant to be included
// on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "parley/sdk/account_admin.hpp"
#include "parley/sdk/element.hpp"
#include "parley/sdk/event.hpp"
#include "parley/sdk/host.hpp"
#include "parley/sdk/services.hpp"
#include "parley/sdk/subscription.hpp"

namespace parley {

class AccountQuery {
 public:
  using Answers = std::vector<Element>;
  using Done = std::function<void(Answers)>;
  static constexpr std::chrono::milliseconds timeout{10000};

  // From start(): `name` makes the tokens unique among the modules that ask.
  void init(Host& host, std::string name) {
    host_ = &host;
    name_ = std::move(name);
    asks_.init(host);
  }

  // On a worker loop. `attrs` go on the <query/> beside user, want, token and answers.
  void ask(std::string_view user, std::string_view want, const std::vector<std::pair<std::string, std::string>>& attrs,
           Done done) {
    auto& asks = asks_.here().pending;
    const std::string token = name_ + "-" + std::to_string(current_loop(*host_)) + "-" + std::to_string(++serial_here());
    asks[token].done = std::move(done);
    Element query = host_->element("query", ns_admin_user);
    query.set_attr("user", user).set_attr("want", want).set_attr("token", token).set_attr("answers", "0");
    for (const auto& [k, v] : attrs) query.set_attr(k, v);
    host_->run_fold(PARLEY_EVENT_ADMIN_USER_QUERY, query);
    auto it = asks.find(token);
    if (it == asks.end()) return;
    int64_t expected = 0;
    for (char c : query.attr("answers").value_or("0"))
      if (c >= '0' && c <= '9') expected = expected * 10 + (c - '0');
    it->second.expected = expected;
    if (it->second.received >= expected) return finish(token);
    it->second.timer = host_->start_timer(timeout, [this, token] {
      auto found = asks_.here().pending.find(token);
      if (found == asks_.here().pending.end()) return;
      found->second.timer = 0;
      host_->warn("an account query (" + token + ") got " + std::to_string(found->second.received) + " of " +
                  std::to_string(found->second.expected) + " answers in time");
      finish(token);
    });
  }

  // From the module's hook of PARLEY_EVENT_ADMIN_USER_ANSWER (which then returns PASS).
  void on_answer(const Event& event) {
    auto acc = event.acc();
    if (!acc) return;
    auto& asks = asks_.here().pending;
    auto it = asks.find(std::string(acc->attr("token").value_or("")));
    if (it == asks.end()) return;  // another module's question, or one that timed out
    ++it->second.received;
    for (ElementView child : acc->children()) it->second.answers.push_back(child.clone());
    if (it->second.expected >= 0 && it->second.received >= it->second.expected) finish(std::string(it->first));
  }

  // want='roster': the account's roster items (only `contact`'s, if given), or nullopt
  // when no module answered with a roster (none keeps rosters, or it could not read).
  struct RosterEntry {
    std::string jid;           // prepared bare JID
    std::string subscription;  // none, to, from, both
    std::vector<std::string> groups;
    bool has_from() const { return subscription_has_from(subscription); }  // parley/sdk/subscription.hpp
    bool has_to() const { return subscription_has_to(subscription); }
  };
  using RosterFn = std::function<void(std::optional<std::vector<RosterEntry>>)>;
  void ask_roster(std::string_view user, std::string_view contact, RosterFn done) {
    // format='lines': one text payload instead of an element per item, so that a
    // roster of tens of thousands costs its loop milliseconds (see roster_lines below).
    std::vector<std::pair<std::string, std::string>> attrs{{"format", "lines"}};
    if (!contact.empty()) attrs.emplace_back("contact", std::string(contact));
    ask(user, "roster", attrs, [done = std::move(done)](Answers answers) { done(roster_of(answers)); });
  }

  // The roster in the answers to want='roster' (either form), or nullopt: no roster in
  // them. Empty answers mean that no module keeps rosters, so a module that must tell
  // "nobody is subscribed" from "the roster could not be read" asks with ask() and
  // looks at answers.empty() first.
  static std::optional<std::vector<RosterEntry>> roster_of(const Answers& answers) {
    if (const Element* lines = payload(answers, "roster", ns_roster_lines)) return roster_lines(lines->text());
    const Element* query = payload(answers, "query", "jabber:iq:roster");
    if (query == nullptr) return std::nullopt;
    std::vector<RosterEntry> out;
    for (ElementRef item : query->children()) {
      if (item.name() != "item") continue;
      RosterEntry e;
      e.jid = std::string(item.attr("jid").value_or(""));
      e.subscription = std::string(item.attr("subscription").value_or("none"));
      for (ElementRef g : item.children())
        if (g.name() == "group") e.groups.push_back(g.text());
      out.push_back(std::move(e));
    }
    return out;
  }

  // want='roster' with format='lines' is answered with
  //   <roster xmlns='urn:parley:roster-lines:0'>TEXT</roster>
  // TEXT: per item "JID SUBSCRIPTION GROUPS\n", GROUPS each as "<bytes>:<text>" (any
  // text, newlines included, round-trips). nullopt if TEXT is malformed.
  static constexpr const char* ns_roster_lines = "urn:parley:roster-lines:0";
  static std::optional<std::vector<RosterEntry>> roster_lines(std::string_view text) {
    std::vector<RosterEntry> out;
    while (!text.empty()) {
      RosterEntry e;
      auto sp = text.find(' ');
      if (sp == std::string_view::npos) return std::nullopt;
      e.jid = std::string(text.substr(0, sp));
      text.remove_prefix(sp + 1);
      sp = text.find(' ');
      if (sp == std::string_view::npos) return std::nullopt;
      e.subscription = std::string(text.substr(0, sp));
      text.remove_prefix(sp + 1);
      while (!text.empty() && text.front() != '\n') {
        const auto colon = text.find(':');
        if (colon == std::string_view::npos || colon == 0) return std::nullopt;
        std::size_t len = 0;
        for (char c : text.substr(0, colon)) {
          if (c < '0' || c > '9' || len > text.size()) return std::nullopt;
          len = len * 10 + static_cast<std::size_t>(c - '0');
        }
        if (len > text.size() - colon - 1) return std::nullopt;
        e.groups.emplace_back(text.substr(colon + 1, len));
        text.remove_prefix(colon + 1 + len);
      }
      if (text.empty()) return std::nullopt;
      text.remove_prefix(1);  // the newline
      out.push_back(std::move(e));
    }
    return out;
  }

  // The payload named (name, xmlns) among `answers`, if any.
  static const Element* payload(const Answers& answers, std::string_view name, std::string_view xmlns) {
    for (const Element& a : answers)
      if (a.name() == name && a.xmlns() == xmlns) return &a;
    return nullptr;
  }

 private:
  struct Pending {
    int64_t expected = -1;  // known once the fold returned
    int64_t received = 0;
    Answers answers;
    Done done;
    uint64_t timer = 0;
  };
  struct LoopAsks {
    std::unordered_map<std::string, Pending> pending;
    uint64_t serial = 0;
  };

  uint64_t& serial_here() { return loop_state().serial; }
  LoopAsks& loop_state() { return asks_.here(); }

  void finish(const std::string& token) {
    auto& asks = asks_.here().pending;
    auto it = asks.find(token);
    if (it == asks.end()) return;
    Pending p = std::move(it->second);
    asks.erase(it);
    if (p.timer != 0) host_->cancel_timer(p.timer);
    if (p.done) p.done(std::move(p.answers));
  }

  Host* host_ = nullptr;
  std::string name_;
  PerLoop<LoopAsks> asks_;
};

}  // namespace parley
