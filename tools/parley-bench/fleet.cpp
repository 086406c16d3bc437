#include "fleet.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

namespace parley::bench {

class Fleet::Shard final : public XmppClient::Listener {
 public:
  Shard(Fleet& fleet, Worker& worker) : fleet_(fleet), worker_(worker) {
    worker_.run_sync([this] {
      uv_timer_init(worker_.loop(), &timer_);
      timer_.data = this;
    });
  }

  // Worker thread.
  void configure(XmppClient::Mode mode, double rate, unsigned concurrency) {
    mode_ = mode;
    rate_ = rate;
    max_in_flight_ = std::max(1u, concurrency);
    pace_start_ns_ = uv_hrtime();
    launched_ = 0;
  }

  void enqueue(size_t index) {
    queue_.push_back(index);
    pump();
  }

  void pump() {
    if (pumping_) return;  // a start() that fails at once re-enters through on_failed
    pumping_ = true;
    const uint64_t now = uv_hrtime();
    while (!queue_.empty() && in_flight_ < max_in_flight_) {
      if (rate_ > 0 && static_cast<double>(launched_) >= static_cast<double>(now - pace_start_ns_) / 1e9 * rate_ + 1)
        break;
      const size_t index = queue_.front();
      queue_.pop_front();
      XmppClient& client = *fleet_.clients_[index];
      if (client.phase() != XmppClient::Phase::idle && client.phase() != XmppClient::Phase::closed) {
        // Still connected (or closing): count it as a failed login, or the waiter would wait forever.
        ++failed_;
        fleet_.counters_.logins_failed.fetch_add(1, std::memory_order_relaxed);
        ++failures_["client still connected when its login was due"];
        continue;
      }
      ++in_flight_;
      ++launched_;
      fleet_.pending_[index] = 1;
      const Account& account = fleet_.accounts_[index];
      client.start(mode_, account.user, account.password, fleet_.resource_, fleet_.source_for(index));
    }
    pumping_ = false;
    if (queue_.empty()) {
      uv_timer_stop(&timer_);
    } else if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&timer_))) {
      uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<Shard*>(t->data)->pump(); }, 1, 1);
    }
  }

  void on_online(XmppClient& client) override {
    if (fleet_.pending_[client.tag]) {
      fleet_.pending_[client.tag] = 0;
      --in_flight_;
      latencies_.add(client.online_ns() - client.started_ns());
      ++ok_;
      fleet_.counters_.logins_ok.fetch_add(1, std::memory_order_relaxed);
    }
    if (fleet_.hooks_.on_online) fleet_.hooks_.on_online(client);
    pump();
  }

  void on_failed(XmppClient& client, std::string_view why) override {
    if (fleet_.pending_[client.tag]) {
      fleet_.pending_[client.tag] = 0;
      --in_flight_;
      ++failed_;
      fleet_.counters_.logins_failed.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++dropped_;
      fleet_.counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    }
    ++failures_[std::string(why)];
    pump();
  }

  void on_stanza(XmppClient& client, const xml::Element& stanza) override {
    if (fleet_.hooks_.on_stanza) fleet_.hooks_.on_stanza(client, stanza);
  }

  void on_closed(XmppClient& client) override {
    fleet_.counters_.closed.fetch_add(1, std::memory_order_relaxed);
    if (fleet_.hooks_.on_closed) fleet_.hooks_.on_closed(client);
  }

  void collect(LoginStats& into) {
    into.ok += ok_;
    into.failed += failed_;
    into.dropped += dropped_;
    into.latencies.merge(latencies_);
    for (const auto& [why, n] : failures_) into.failures[why] += n;
    ok_ = failed_ = dropped_ = 0;
    latencies_.clear();
    failures_.clear();
  }

  void dispose() {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  }

 private:
  Fleet& fleet_;
  Worker& worker_;
  uv_timer_t timer_{};
  std::deque<size_t> queue_;
  XmppClient::Mode mode_ = XmppClient::Mode::login;
  double rate_ = 0;
  unsigned max_in_flight_ = 1;
  unsigned in_flight_ = 0;
  uint64_t pace_start_ns_ = 0;
  uint64_t launched_ = 0;
  bool pumping_ = false;
  uint64_t ok_ = 0, failed_ = 0, dropped_ = 0;
  Latencies latencies_;
  std::map<std::string, uint64_t> failures_;
};

std::vector<sockaddr_in> loopback_sources(unsigned count) {
  std::vector<sockaddr_in> out;
  if (count <= 1) return out;
  for (unsigned i = 1; i <= std::min(count, 254u); ++i) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl((127u << 24) | i);
    out.push_back(a);
  }
  return out;
}

Fleet::Fleet(const Target& target, unsigned threads, std::vector<sockaddr_in> sources, std::string resource)
    : target_(target), resource_(std::move(resource)), sources_(std::move(sources)) {
  threads = std::max(1u, threads);
  for (unsigned w = 0; w < threads; ++w) {
    workers_.push_back(std::make_unique<Worker>(w));
    shards_.push_back(std::make_unique<Shard>(*this, *workers_.back()));
  }
  members_.resize(threads);
}

Fleet::~Fleet() {
  for (unsigned w = 0; w < workers_.size(); ++w) {
    workers_[w]->run_sync([this, w] {
      for (size_t index : members_[w]) clients_[index]->dispose();
      shards_[w]->dispose();
    });
  }
  for (auto& worker : workers_) worker->stop();
  // The loops are gone: nothing refers to the clients any more.
  clients_.clear();
}

void Fleet::add_clients(const std::vector<Account>& accounts, const std::function<unsigned(size_t)>& worker_of) {
  for (const Account& account : accounts) {
    const size_t index = clients_.size();
    const unsigned w = worker_of(index) % threads();
    accounts_.push_back(account);
    clients_.push_back(std::make_unique<XmppClient>(*workers_[w], target_, *shards_[w]));
    clients_.back()->tag = static_cast<uint32_t>(index);
    members_[w].push_back(index);
    pending_.push_back(0);
  }
}

const sockaddr_in* Fleet::source_for(size_t index) const {
  if (sources_.empty()) return nullptr;
  return &sources_[index % sources_.size()];
}

void Fleet::set_pacing(XmppClient::Mode mode, double rate, unsigned concurrency) {
  const unsigned n = threads();
  for (unsigned w = 0; w < n; ++w) {
    // The first shards take the remainder of the concurrency, so that the total is exact.
    const unsigned share = concurrency / n + (w < concurrency % n ? 1 : 0);
    workers_[w]->run_sync([this, w, mode, rate, n, share] { shards_[w]->configure(mode, rate / n, share); });
  }
}

double Fleet::login(const std::vector<size_t>& indices, XmppClient::Mode mode, double rate, unsigned concurrency,
                    double timeout_s, bool progress) {
  const uint64_t before = counters_.logins_ok + counters_.logins_failed;
  set_pacing(mode, rate, std::max(concurrency, threads()));
  std::vector<std::vector<size_t>> per_worker(threads());
  for (size_t index : indices) per_worker[clients_[index]->worker().index()].push_back(index);
  const auto start = std::chrono::steady_clock::now();
  for (unsigned w = 0; w < threads(); ++w) {
    workers_[w]->post([this, w, list = std::move(per_worker[w])] {
      for (size_t index : list) shards_[w]->enqueue(index);
    });
  }
  auto last_print = start;
  while (true) {
    const uint64_t done = counters_.logins_ok + counters_.logins_failed - before;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (done >= indices.size() || elapsed > timeout_s) {
      if (progress) std::fprintf(stderr, "\r  logins %lu/%zu (failed %lu)            \n",
                                 static_cast<unsigned long>(done), indices.size(),
                                 static_cast<unsigned long>(counters_.logins_failed.load()));
      return elapsed;
    }
    if (progress && now - last_print > std::chrono::seconds(1)) {
      last_print = now;
      std::fprintf(stderr, "\r  logins %lu/%zu (failed %lu) %.0f s", static_cast<unsigned long>(done),
                   indices.size(), static_cast<unsigned long>(counters_.logins_failed.load()), elapsed);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void Fleet::enqueue_login(XmppClient& client) { shards_[client.worker().index()]->enqueue(client.tag); }

Fleet::LoginStats Fleet::collect_logins() {
  LoginStats stats;
  for (unsigned w = 0; w < threads(); ++w) workers_[w]->run_sync([&, w] { shards_[w]->collect(stats); });
  return stats;
}

std::string Fleet::tls_description() {
  std::string out;
  for (unsigned w = 0; w < threads() && out.empty(); ++w) {
    workers_[w]->run_sync([&, w] {
      for (size_t index : members_[w]) {
        if (clients_[index]->phase() != XmppClient::Phase::online) continue;
        out = clients_[index]->tls_description();
        if (!out.empty()) return;
      }
    });
  }
  return out;
}

void Fleet::close_all(double timeout_s) {
  for (unsigned w = 0; w < threads(); ++w) {
    workers_[w]->post([this, w] {
      for (size_t index : members_[w]) clients_[index]->close();
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    size_t open = 0;
    for (unsigned w = 0; w < threads(); ++w) {
      workers_[w]->run_sync([&, w] {
        for (size_t index : members_[w]) {
          auto phase = clients_[index]->phase();
          if (phase != XmppClient::Phase::idle && phase != XmppClient::Phase::closed) ++open;
        }
      });
    }
    if (open == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (unsigned w = 0; w < threads(); ++w) {
    workers_[w]->run_sync([this, w] {
      for (size_t index : members_[w]) clients_[index]->abort("closing");
    });
  }
}

}  // namespace parley::bench
