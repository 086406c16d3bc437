// presence: R receiving sessions get U directed presence updates each from S sending sessions (receiver
// i from sender i % S), as a roster's worth of contacts changing status would bring them. With
// --inactive the receivers first say <inactive/> (XEP-0352 client state indication): a server that
// holds what is not urgent writes nothing to them during the updates and, on <active/> at the end,
// only the latest presence of each contact. The report says how many updates reached the receivers'
// sockets during the updates and in all, how many socket reads (wake-ups) the receivers had, and
// the server's CPU. Without --inactive every update is written as it comes.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <thread>

#include "run_context.hpp"
#include "scenarios.hpp"
#include "xml/serializer.hpp"

namespace parley::bench {

namespace {

constexpr std::string_view kStatusPrefix = "churn ";

struct Totals {
  std::atomic<uint64_t> presences{0};    // updates that reached a receiver
  std::atomic<uint64_t> senders_done{0};  // senders whose closing ping came back
};

bool is_update(const xml::Element& stanza) {
  if (stanza.name() != "presence") return false;
  const std::string status = stanza.child_text("status");
  return status.compare(0, kStatusPrefix.size(), kStatusPrefix) == 0;
}

}  // namespace

int run_presence(const CommonOptions& common, const PresenceOptions& options) {
  auto ctx = RunContext::create(common, "presence");
  if (!ctx) {
    std::fprintf(stderr, "parley-bench: %s\n", ctx.error().c_str());
    return 2;
  }
  if (options.receivers == 0 || options.senders == 0 || options.updates == 0) {
    std::fprintf(stderr, "parley-bench: --receivers, --senders and --updates must be at least 1\n");
    return 2;
  }
  RunContext& run = **ctx;
  const size_t receivers = options.receivers;
  const size_t sessions = receivers + options.senders;
  Totals totals;
  auto fleet = run.make_fleet(sessions);
  fleet->add_clients(run.accounts(common.first, sessions),
                     [&](size_t i) { return static_cast<unsigned>(i % fleet->threads()); });
  for (size_t i = 0; i < sessions; ++i) fleet->client(i).tag = static_cast<uint32_t>(i);
  fleet->set_hooks({.on_online = {},
                    .on_stanza =
                        [&](XmppClient& c, const xml::Element& s) {
                          if (c.tag < receivers) {
                            if (is_update(s)) totals.presences.fetch_add(1, std::memory_order_relaxed);
                          } else if (s.name() == "iq" && s.attr("id") == "churn-done") {
                            totals.senders_done.fetch_add(1, std::memory_order_relaxed);
                          }
                        },
                    .on_closed = {}});

  std::vector<size_t> all(sessions);
  std::iota(all.begin(), all.end(), size_t{0});
  const double login_seconds = fleet->login(all, XmppClient::Mode::login, common.login_rate,
                                            common.login_concurrency, 1e9, common.progress);
  auto logins = fleet->collect_logins();
  Report r = run.start_report();
  r.add("receivers", "receivers", static_cast<int64_t>(receivers));
  r.add("senders", "senders", static_cast<int64_t>(options.senders));
  r.add("updates", "updates per receiver", static_cast<int64_t>(options.updates));
  r.add("inactive", "receivers inactive (CSI)", static_cast<int64_t>(options.inactive ? 1 : 0));
  add_login_fields(r, logins, login_seconds);
  if (logins.ok != sessions) {
    RunContext::add_failures(r, logins.failures);
    r.add("updates_lost", "updates lost", static_cast<int64_t>(-1));
    fleet->close_all(10);
    run.emit(r);
    return 1;
  }

  // Worker threads: the receivers' reads and the senders' sends.
  auto receiver_reads = [&] {
    std::atomic<uint64_t> sum{0};
    for (unsigned w = 0; w < fleet->threads(); ++w)
      fleet->worker(w).run_sync([&, w] {
        uint64_t mine = 0;
        for (size_t i : fleet->members(w))
          if (i < receivers) mine += fleet->client(i).reads();
        sum.fetch_add(mine);
      });
    return sum.load();
  };
  auto on_receivers = [&](std::string_view xml) {
    for (unsigned w = 0; w < fleet->threads(); ++w)
      fleet->worker(w).run_sync([&, w] {
        for (size_t i : fleet->members(w))
          if (i < receivers) fleet->client(i).send(xml);
      });
  };

  if (options.inactive) on_receivers("<inactive xmlns='urn:xmpp:csi:0'/>");
  std::this_thread::sleep_for(std::chrono::duration<double>(options.settle));
  const uint64_t presences_before = totals.presences.load();
  const uint64_t reads_before = receiver_reads();
  const auto before = run.sample_server();
  const uint64_t start_ns = uv_hrtime();

  // Each sender: U rounds over its receivers, then a ping whose answer says the server took them all.
  for (unsigned w = 0; w < fleet->threads(); ++w) {
    fleet->worker(w).post([&, w] {
      std::string m;
      for (size_t s : fleet->members(w)) {
        if (s < receivers) continue;
        XmppClient& sender = fleet->client(s);
        const size_t sender_index = s - receivers;
        for (unsigned u = 0; u < options.updates; ++u) {
          for (size_t i = sender_index; i < receivers; i += options.senders) {
            m.clear();
            m += "<presence to='";
            xml::escape_attr_to(m, fleet->client(i).full_jid());
            m += "'><show>";
            m += u % 2 ? "away" : "xa";
            m += "</show><status>";
            m += kStatusPrefix;
            m += std::to_string(u);
            m += "</status></presence>";
            sender.send(m);
          }
        }
        sender.send("<iq type='get' id='churn-done' to='" + common.domain + "'><ping xmlns='urn:xmpp:ping'/></iq>");
      }
    });
  }

  const uint64_t sent = static_cast<uint64_t>(receivers) * options.updates;
  const uint64_t expect_now = options.inactive ? 0 : sent;
  auto wait_for = [&](auto done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.drain_timeout);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  };
  bool complete = wait_for([&] {
    return totals.senders_done.load() >= options.senders && totals.presences.load() - presences_before >= expect_now;
  });
  // The pings say the senders' loops took every update; the routes to the receivers' loops drain
  // meanwhile: a short wait, then what reached the sockets during the updates.
  if (options.inactive) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const double updates_seconds = static_cast<double>(uv_hrtime() - start_ns) / 1e9;
  const auto after_updates = run.sample_server();
  const uint64_t during = totals.presences.load() - presences_before;
  const uint64_t reads_during = receiver_reads() - reads_before;

  // <active/>: what was held comes now (the latest update of each contact).
  uint64_t flushed = 0;
  if (options.inactive) {
    on_receivers("<active xmlns='urn:xmpp:csi:0'/>");
    complete = wait_for([&] { return totals.presences.load() - presences_before - during >= receivers; }) && complete;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // anything more would come now
    flushed = totals.presences.load() - presences_before - during;
  }
  const auto after_all = run.sample_server();
  const uint64_t reads_total = receiver_reads() - reads_before;
  const uint64_t written = during + flushed;

  r.add("updates_sent", "updates sent", static_cast<int64_t>(sent));
  r.add("updates_written_during", "updates written during the churn", static_cast<int64_t>(during));
  r.add("updates_written_on_active", "updates written on <active/>", static_cast<int64_t>(flushed));
  r.add("updates_written", "updates written in all", static_cast<int64_t>(written));
  r.add("updates_not_written", "updates never written (superseded)", static_cast<int64_t>(sent - std::min(sent, written)));
  r.add("receiver_reads_during", "receiver socket reads during the churn", static_cast<int64_t>(reads_during));
  r.add("receiver_reads", "receiver socket reads in all", static_cast<int64_t>(reads_total));
  r.add("churn_seconds", "churn phase s", updates_seconds, 3);
  if (before && after_updates && after_all) {
    const double cpu = after_updates->cpu_s - before->cpu_s;
    const double cpu_all = after_all->cpu_s - before->cpu_s;
    r.add("server_cpu_s", "server CPU s (churn)", cpu, 3);
    r.add("server_cpu_s_all", "server CPU s (churn and flush)", cpu_all, 3);
    r.add("server_cpu_s_per_100k", "server CPU s per 100k updates (all)",
          sent ? cpu_all * 1e5 / static_cast<double>(sent) : 0.0, 3);
    r.add("server_rss_kib", "server RSS KiB", static_cast<int64_t>(after_all->rss_kib));
  }
  r.add("sessions_dropped", "sessions dropped", static_cast<int64_t>(fleet->counters().dropped.load()));
  auto later = fleet->collect_logins();
  RunContext::add_failures(r, later.failures);
  fleet->close_all(15);
  run.emit(r);
  return complete && fleet->counters().dropped.load() == 0 ? 0 : 1;
}

}  // namespace parley::bench
