// mod_http_upload: XEP-0363 HTTP File Upload (urn:xmpp:http:upload:0).
//
// A service at upload.HOST (register_service; listed in the host's
// disco#items, its disco#info carries the max-file-size form) hands out
// slots: a PUT URL and a GET URL under EXTERNAL_URL/upload/HOST/TOKEN/NAME,
// where TOKEN is an HMAC of the slot (owner, name, size, type, expiry,
// nonce) under a secret kept in data_dir. Nothing is stored for a slot: the
// PUT URL's query carries the slot's fields, and the PUT is taken only if
// they sign to TOKEN and have not expired. The PUT's body streams to
// data_dir/upload/HOST/TOKEN/ on the module's I/O thread (upload_store.hpp),
// with backpressure both ways; GET and HEAD serve the file with Range, an
// ETag and headers that keep it from running as a page in the server's
// origin. Files expire (expire_after), go with their owner's account, and
// count against a per-user quota of bytes per quota_window.
//
// Threads: the HTTP exchanges and slot requests run on whichever worker loop
// carries them, their state kept per loop (PerLoop) and touched by that loop
// only; every file system call runs on the store's thread, which posts its
// answers back to the loop that asked.
#include <openssl/rand.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "parley/module.hpp"
#include "upload_logic.hpp"
#include "upload_store.hpp"

namespace {

constexpr const char* ns_upload = "urn:xmpp:http:upload:0";
constexpr const char* ns_info = "http://jabber.org/protocol/disco#info";
constexpr const char* ns_items = "http://jabber.org/protocol/disco#items";
constexpr const char* ns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
constexpr const char* ns_data = "jabber:x:data";

// Body bytes handed to the store and not written yet, per PUT: past the high
// mark the body is paused, below the low mark it goes on.
constexpr uint64_t kPutHighMark = 1024 * 1024;
constexpr uint64_t kPutLowMark = 256 * 1024;
constexpr size_t kReadBlock = 256 * 1024;

using Headers = std::vector<std::pair<std::string, std::string>>;

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

std::string random_nonce() {
  unsigned char raw[12];
  if (RAND_bytes(raw, sizeof raw) != 1) return {};
  return upload::base64url(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));  // 16 characters
}

struct Exchange {
  bool put = false;
  std::string token;
  bool closed = false;  // gone (on_http_closed): store answers are dropped
  // PUT
  upload::Meta meta;
  uint64_t in_store = 0;  // bytes posted to the store, not written yet
  bool paused = false;
  bool failed = false;
  bool conflict = false;  // the slot's file exists: 409 once the body is read
  // GET
  int fd = -1;
  uint64_t next = 0, end = 0;  // bytes [next, end) still to send
  bool reading = false;
  bool want_write = false;
};

class ModHttpUpload : public parley::Module, public parley::HttpHandler {
 public:
  parley::Result<void, std::string> start() override {
    if (!parley::supports_http(host())) return parley::unexpected(std::string("needs a host with HTTP routes"));
    max_file_size_ = host().option_int("max_file_size").value_or(100LL * 1024 * 1024);
    put_timeout_ = host().option_int("put_timeout").value_or(300);
    int64_t expire_after = host().option_int("expire_after").value_or(30LL * 86400);
    int64_t sweep_every = host().option_int("expiry_sweep_interval").value_or(3600);
    quota_ = static_cast<uint64_t>(host().option_int("quota_bytes").value_or(1024LL * 1024 * 1024));
    int64_t quota_window = host().option_int("quota_window").value_or(86400);
    int64_t global_quota = host().option_int("global_quota_bytes").value_or(0);
    if (global_quota < 0) return parley::unexpected(std::string("global_quota_bytes must be 0 (none) or more"));
    global_quota_ = static_cast<uint64_t>(global_quota);
    if (max_file_size_ < 1) return parley::unexpected(std::string("max_file_size must be at least 1"));
    if (put_timeout_ < 1 || put_timeout_ > 86400) return parley::unexpected(std::string("put_timeout: 1 to 86400 s"));
    if (expire_after < 0 || sweep_every < 1 || quota_window < 1)
      return parley::unexpected(std::string("expire_after >= 0, expiry_sweep_interval and quota_window >= 1"));
    domain_ = host().option_string("service").value_or("upload." + host().module_host());
    base_ = host().option_string("external_url").value_or("https://" + domain_ + ":5443");
    while (!base_.empty() && base_.back() == '/') base_.pop_back();
    if (!base_.starts_with("http://") && !base_.starts_with("https://"))
      return parley::unexpected(std::string("external_url must be an http:// or https:// URL"));
    prefix_ = "/upload/" + host().module_host();

    parley::Http http(host());
    std::string dir = http.data_dir() + "/upload/" + host().module_host();
    if (auto secret = host().option_string("secret"); secret && !secret->empty()) {
      key_ = *secret;
    } else if (auto loaded = load_or_make_key(http.data_dir() + "/upload/" + host().module_host() + ".key")) {
      key_ = *loaded;
    } else {
      return parley::unexpected(std::string("cannot read or write the upload key in data_dir"));
    }
    if (!parley::register_service<&ModHttpUpload::on_stanza>(*this, domain_, "HTTP File Upload"))
      return parley::unexpected("cannot serve " + domain_);
    parley::HttpRoute route{"GET,HEAD,PUT,OPTIONS", prefix_, static_cast<uint64_t>(max_file_size_), 0, ""};
    if (!parley::http_route(host(), route, *this)) return parley::unexpected("cannot serve the HTTP path " + prefix_);
    loops_.init(host());
    uploads_ = parley::register_metric(host(), "uploads", PARLEY_METRIC_COUNTER, "files uploaded (PUT 201)");
    upload_bytes_ = parley::register_metric(host(), "upload_bytes", PARLEY_METRIC_COUNTER, "bytes uploaded");
    downloads_ = parley::register_metric(host(), "downloads", PARLEY_METRIC_COUNTER, "GET answered 200 or 206");
    store_ = std::make_unique<upload::Store>(dir, expire_after, sweep_every, quota_window);
    store_->start();
    return {};
  }

  void stop() override { store_.reset(); }  // joins the store's thread

  // ---- XMPP: the service ----

  parley::Outcome on_stanza(const parley::ServiceStanza& in) {
    if (in.name() != "iq") return parley::Outcome::handled;  // messages and presence to the service: dropped
    auto iq = in.stanza();
    auto payload = iq.first_child();
    if (in.type() != "get" || !payload || in.to() != domain_) return parley::Outcome::pass;
    if (payload->xmlns() == ns_info && payload->name() == "query") {
      host().route(disco_info(iq));
      return parley::Outcome::handled;
    }
    if (payload->xmlns() == ns_items && payload->name() == "query") {
      parley::Element result = parley::make_iq_result(iq);
      result.add_child("query", ns_items);
      host().route(std::move(result));
      return parley::Outcome::handled;
    }
    if (payload->xmlns() == ns_upload && payload->name() == "request") {
      request_slot(iq, *payload, in.from());
      return parley::Outcome::handled;
    }
    return parley::Outcome::pass;
  }

  void on_user_removed(const parley::Event& event) {
    if (event.user().empty() || !store_) return;
    std::string owner = event.user_bare();
    store_->post([this, owner] { store_->remove_owner(owner); });
  }

  // ---- HTTP ----

  void on_http_request(const parley::HttpRequest& rq) override {
    parley::Http http(host());
    if (rq.method == "OPTIONS") {
      // CORS preflight (web clients upload from their own origin).
      Headers h = cors();
      h.emplace_back("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS");
      h.emplace_back("Access-Control-Allow-Headers", "Content-Type, Authorization");
      h.emplace_back("Access-Control-Max-Age", "86400");
      http.answer(rq.exchange, 204, h, "");
      return;
    }
    auto file = upload::parse_file_path(rq.path.substr(prefix_.size()));
    if (!file) return refuse(rq.exchange, 404, "not found");
    if (rq.method == "PUT") return start_put(rq, *file);
    start_get(rq, *file);
  }

  void on_http_body(uint64_t id, std::string_view chunk, bool last) override {
    Exchange* ex = find(id);
    if (ex == nullptr || !ex->put) return;
    uint32_t loop = static_cast<uint32_t>(parley::current_loop(host()));
    if (!chunk.empty()) {
      ex->in_store += chunk.size();
      store_->post([this, id, loop, token = ex->token, bytes = std::string(chunk)] {
        bool ok = store_->write_upload(token, id, bytes);
        size_t n = bytes.size();
        parley::post(host(), loop, [this, id, n, ok] { written(id, n, ok); });
      });
      if (ex->in_store > kPutHighMark && !ex->paused) {
        ex->paused = true;
        parley::Http(host()).pause_body(id, true);
      }
    }
    if (!last) return;
    store_->post([this, id, loop, token = ex->token, meta = ex->meta] {
      bool ok = store_->finish_upload(token, id, meta);
      parley::post(host(), loop, [this, id, ok] { finished(id, ok); });
    });
  }

  void on_http_writable(uint64_t id) override {
    Exchange* ex = find(id);
    if (ex == nullptr || ex->put) return;
    ex->want_write = false;
    read_next(id, *ex);
  }

  void on_http_closed(uint64_t id) override {
    Exchange* ex = find(id);
    if (ex == nullptr) return;
    if (ex->put) {
      store_->post([this, id, token = ex->token] { store_->abort_upload(token, id); });
    } else if (ex->fd >= 0 && !ex->reading) {
      int fd = ex->fd;
      store_->post([fd] { upload::Store::close_file(fd); });
    }
    if (ex->reading) {
      ex->closed = true;  // the read under way closes the file when it comes back
      return;
    }
    loops_.here().erase(id);
  }

 private:
  std::optional<std::string> load_or_make_key(const std::string& file) {
    // In start(), on the main thread (not a loop): blocking file calls are fine here.
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(file).parent_path(), ec);
    {
      std::ifstream in(file, std::ios::binary);
      std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (key.size() >= 32) return key;
    }
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) return std::nullopt;
    std::string key = upload::base64url(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << key;
    if (!out) return std::nullopt;
    std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
    return key;
  }

  parley::Element disco_info(parley::ElementView iq) {
    parley::Element result = parley::make_iq_result(iq);
    auto query = result.add_child("query", ns_info);
    query.add_child("identity", ns_info)
        .set_attr("category", "store")
        .set_attr("type", "file")
        .set_attr("name", "HTTP File Upload");
    query.add_child("feature", ns_info).set_attr("var", ns_upload);
    auto x = query.add_child("x", ns_data);
    x.set_attr("type", "result");
    auto form_type = x.add_child("field", ns_data);
    form_type.set_attr("var", "FORM_TYPE").set_attr("type", "hidden");
    form_type.add_child("value", ns_data).add_text(ns_upload);
    x.add_child("field", ns_data).set_attr("var", "max-file-size").add_child("value", ns_data).add_text(
        std::to_string(max_file_size_));
    return result;
  }

  // An error answering `iq` with `condition` (and `type`), the request
  // echoed (XEP-0363 §4), and an optional extra child built by `extra`.
  template <class F>
  void error(parley::ElementView iq, parley::ElementView request, const char* type, const char* condition,
             const std::string& text, F&& extra) {
    parley::Element reply = parley::make_iq_result(iq);
    reply.set_attr("type", "error");
    reply.add_child(request.clone());
    auto e = reply.add_child("error", "jabber:client");
    e.set_attr("type", type);
    e.add_child(condition, ns_stanzas);
    e.add_child("text", ns_stanzas).add_text(text);
    extra(e);
    host().route(std::move(reply));
  }

  void request_slot(parley::ElementView iq, parley::ElementView request, std::string_view from) {
    auto none = [](parley::ElementRef&) {};
    std::string owner(parley::bare_jid(from));
    // Local accounts only (their files go with the account): forbidden, as others may (RFC 6120 8.3.3.6).
    size_t at = owner.find('@');
    if (at == std::string::npos || owner.substr(at + 1) != host().module_host())
      return error(iq, request, "auth", "forbidden", "Only accounts of " + host().module_host() + " may upload",
                   none);
    std::string name(request.attr("filename").value_or(""));
    std::string size_text(request.attr("size").value_or(""));
    uint64_t size = 0;
    bool size_ok = !size_text.empty() && size_text.size() <= 19 &&
                   size_text.find_first_not_of("0123456789") == std::string::npos;
    if (size_ok) size = std::stoull(size_text);
    // Missing or malformed: the element's syntax (bad-request); a size of 0 is well-formed but refused.
    if (name.empty() || !size_ok)
      return error(iq, request, "modify", "bad-request", "filename and a size in bytes are required", none);
    if (size == 0) return error(iq, request, "modify", "not-acceptable", "File is empty: size must be at least 1", none);
    if (size > static_cast<uint64_t>(max_file_size_)) {
      std::string limit = std::to_string(max_file_size_);
      return error(iq, request, "modify", "not-acceptable", "File too large. The maximum file size is " + limit + " bytes",
                   [&](parley::ElementRef& e) {
                     e.add_child("file-too-large", ns_upload).add_child("max-file-size", ns_upload).add_text(limit);
                   });
    }
    std::string type_given(request.attr("content-type").value_or(""));
    std::string content_type = upload::sanitize_content_type(type_given);
    if (!type_given.empty() && content_type.empty())
      return error(iq, request, "modify", "bad-request", "not a Content-Type: " + type_given, none);
    upload::Slot slot;
    slot.owner = owner;
    slot.filename = upload::sanitize_filename(name);
    slot.size = size;
    slot.content_type = content_type;
    slot.expires = now_s() + put_timeout_;
    slot.nonce = random_nonce();
    if (slot.nonce.empty()) return error(iq, request, "wait", "internal-server-error", "no randomness", none);
    if (quota_ == 0 && global_quota_ == 0) return send_slot(iq, slot);
    // The quotas are the store's to count: ask it, answer back here.
    uint32_t loop = static_cast<uint32_t>(parley::current_loop(host()));
    auto kept = std::make_shared<parley::Element>(iq.clone());
    store_->post([this, loop, kept, slot, now = now_s()] {
      int64_t retry = quota_ == 0 ? 0 : store_->free_at(slot.owner, quota_, slot.size, now);
      bool full = global_quota_ != 0 && store_->stored() + slot.size > global_quota_;
      parley::post(host(), loop, [this, kept, slot, retry, full] {
        auto request = kept->child("request", ns_upload);
        if (!request) return send_slot(*kept, slot);
        if (full) {
          // The service's whole store (files not expired yet): no retry time
          // to promise, space comes back as files expire or are removed.
          return error(*kept, *request, "wait", "resource-constraint", "The upload service's storage is full",
                       [](parley::ElementRef&) {});
        }
        if (retry == 0) return send_slot(*kept, slot);
        if (slot.size > quota_)
          return error(*kept, *request, "cancel", "not-acceptable",
                       "File larger than the quota of " + std::to_string(quota_) + " bytes", [](parley::ElementRef&) {});
        error(*kept, *request, "wait", "resource-constraint",
              "Quota reached: " + std::to_string(quota_) + " bytes per " + "quota window", [&](parley::ElementRef& e) {
                e.add_child("retry", ns_upload).set_attr("stamp", upload::xep82(retry));
              });
      });
    });
  }

  void send_slot(parley::ElementView iq, const upload::Slot& slot) {
    std::string token = upload::token(key_, slot);
    std::string get = base_ + prefix_ + "/" + token + "/" + upload::percent_encode(slot.filename);
    std::string put = get + "?" + upload::put_query(slot);
    parley::Element result = parley::make_iq_result(iq);
    auto s = result.add_child("slot", ns_upload);
    s.add_child("put", ns_upload).set_attr("url", put);
    s.add_child("get", ns_upload).set_attr("url", get);
    host().route(std::move(result));
  }

  // ---- HTTP helpers ----

  Headers cors() const { return {{"Access-Control-Allow-Origin", "*"}}; }

  void refuse(uint64_t id, int status, const std::string& why) {
    Headers h = cors();
    h.emplace_back("Content-Type", "text/plain; charset=utf-8");
    h.emplace_back("X-Content-Type-Options", "nosniff");
    parley::Http(host()).answer(id, status, h, why + "\n");
  }

  Exchange* find(uint64_t id) {
    auto& here = loops_.here();
    auto it = here.find(id);
    return it == here.end() ? nullptr : &it->second;
  }

  void start_put(const parley::HttpRequest& rq, const upload::FilePath& file) {
    upload::Slot slot;
    slot.filename = file.filename;
    if (!upload::parse_put_query(rq.query, slot)) return refuse(rq.exchange, 403, "not a valid upload URL");
    // The signature first: nothing about a slot is believed before it checks.
    std::string expected = upload::token(key_, slot);
    if (!constant_time_equal(expected, file.token)) return refuse(rq.exchange, 403, "bad signature");
    if (slot.expires < now_s()) return refuse(rq.exchange, 403, "this upload URL has expired");
    if (rq.content_length < 0) return refuse(rq.exchange, 411, "Content-Length required");
    if (static_cast<uint64_t>(rq.content_length) != slot.size)
      return refuse(rq.exchange, 400, "Content-Length does not match the slot's size");
    if (!slot.content_type.empty()) {
      std::string given =
          upload::sanitize_content_type(parley::Http(host()).header(rq.exchange, "Content-Type").value_or(""));
      if (given != slot.content_type) return refuse(rq.exchange, 415, "Content-Type does not match the slot's");
    }
    Exchange ex;
    ex.put = true;
    ex.token = file.token;
    ex.meta.owner = slot.owner;
    ex.meta.filename = slot.filename;
    ex.meta.content_type = slot.content_type;
    ex.meta.size = slot.size;
    ex.meta.created = now_s();
    uint64_t id = rq.exchange;
    loops_.here()[id] = std::move(ex);
    uint32_t loop = rq.loop;
    store_->post([this, id, loop, token = file.token] {
      bool ok = store_->open_upload(token, id);
      if (!ok) parley::post(host(), loop, [this, id] { open_failed(id); });
    });
  }

  static bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
  }

  void open_failed(uint64_t id) {
    // Used already, or under way: the slot's file exists. The body is read
    // (and dropped: the store has no file for this exchange) and the 409
    // comes at its end, so that the client is not cut while it sends.
    if (Exchange* ex = find(id)) ex->conflict = true;
  }

  void written(uint64_t id, size_t n, bool ok) {
    Exchange* ex = find(id);
    if (ex == nullptr) return;
    ex->in_store -= std::min<uint64_t>(ex->in_store, n);
    if (!ok && !ex->failed) {
      ex->failed = true;
      return;  // answered when the body ends (finish fails too)
    }
    if (ex->paused && ex->in_store < kPutLowMark) {
      ex->paused = false;
      parley::Http(host()).pause_body(id, false);  // may deliver what waited, before it returns
    }
  }

  void finished(uint64_t id, bool ok) {
    Exchange* ex = find(id);
    if (ex == nullptr) return;
    uint64_t size = ex->meta.size;
    bool conflict = ex->conflict;
    loops_.here().erase(id);
    if (conflict) return refuse(id, 409, "this slot was used already");
    if (!ok) return refuse(id, 500, "the file could not be stored");
    uploads_.add();
    upload_bytes_.add(static_cast<int64_t>(size));
    Headers h = cors();
    h.emplace_back("Content-Type", "text/plain; charset=utf-8");
    parley::Http(host()).answer(id, 201, h, "created\n");
  }

  void start_get(const parley::HttpRequest& rq, const upload::FilePath& file) {
    Exchange ex;
    ex.token = file.token;
    ex.reading = true;
    uint64_t id = rq.exchange;
    loops_.here()[id] = std::move(ex);
    uint32_t loop = rq.loop;
    parley::Http http(host());
    std::string range = http.header(id, "Range").value_or("");
    std::string if_none_match = http.header(id, "If-None-Match").value_or("");
    bool head = rq.method == "HEAD";
    store_->post([this, id, loop, token = file.token, name = file.filename, range, if_none_match, head] {
      auto meta = std::make_shared<upload::Meta>();
      int fd = store_->open_file(token, *meta);
      if (fd >= 0 && meta->filename != name) {
        upload::Store::close_file(fd);  // the token is right, the name is not: not this file
        fd = -1;
      }
      parley::post(host(), loop, [this, id, fd, meta, range, if_none_match, head] {
        opened(id, fd, *meta, range, if_none_match, head);
      });
    });
  }

  void opened(uint64_t id, int fd, const upload::Meta& meta, const std::string& range_header,
              const std::string& if_none_match, bool head) {
    Exchange* ex = find(id);
    if (ex == nullptr) {
      if (fd >= 0) store_->post([fd] { upload::Store::close_file(fd); });
      return;
    }
    ex->reading = false;
    ex->fd = fd;
    if (ex->closed) return close_get(id);
    if (fd < 0) {
      loops_.here().erase(id);
      return refuse(id, 404, "not found");
    }
    std::string etag = "\"" + ex->token + "\"";
    Headers h = cors();
    std::string type = meta.content_type.empty() ? "application/octet-stream" : meta.content_type;
    bool inline_ok = upload::inline_safe(type);
    // Never served as a page of this origin: no sniffing, no scripts, HTML and
    // the like only as downloads.
    h.emplace_back("Content-Type", inline_ok ? type : "application/octet-stream");
    h.emplace_back("Content-Disposition", std::string(inline_ok ? "inline" : "attachment") +
                                              "; filename*=UTF-8''" + upload::percent_encode(meta.filename));
    h.emplace_back("X-Content-Type-Options", "nosniff");
    h.emplace_back("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox");
    h.emplace_back("ETag", etag);
    h.emplace_back("Accept-Ranges", "bytes");
    h.emplace_back("Cache-Control", "public, max-age=86400, immutable");
    parley::Http http(host());
    if (!if_none_match.empty() && (if_none_match == etag || if_none_match == "*")) {
      http.respond(id, 304, h, 0);
      http.end(id);
      return close_get(id);
    }
    upload::Range range;
    auto r = upload::parse_range(range_header, meta.size, range);
    if (r == upload::RangeResult::unsatisfiable) {
      h.emplace_back("Content-Range", "bytes */" + std::to_string(meta.size));
      http.answer(id, 416, h, "");
      return close_get(id);
    }
    int status = 200;
    ex->next = 0;
    ex->end = meta.size;
    if (r == upload::RangeResult::ok) {
      status = 206;
      ex->next = range.first;
      ex->end = range.last + 1;
      h.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
                                          std::to_string(meta.size));
    }
    http.respond(id, status, h, static_cast<int64_t>(ex->end - ex->next));
    downloads_.add();
    if (head || ex->next >= ex->end) {
      http.end(id);
      return close_get(id);
    }
    read_next(id, *ex);
  }

  void read_next(uint64_t id, Exchange& ex) {
    if (ex.reading || ex.want_write) return;
    if (ex.next >= ex.end) {
      parley::Http(host()).end(id);
      return close_get(id);
    }
    ex.reading = true;
    size_t n = static_cast<size_t>(std::min<uint64_t>(kReadBlock, ex.end - ex.next));
    uint32_t loop = static_cast<uint32_t>(parley::current_loop(host()));
    store_->post([this, id, loop, fd = ex.fd, offset = ex.next, n] {
      auto bytes = std::make_shared<std::string>(upload::Store::read_at(fd, offset, n));
      parley::post(host(), loop, [this, id, bytes] { got(id, *bytes); });
    });
  }

  void got(uint64_t id, const std::string& bytes) {
    Exchange* ex = find(id);
    if (ex == nullptr) return;
    ex->reading = false;
    if (ex->closed) return close_get(id);
    parley::Http http(host());
    if (bytes.empty()) {
      // The file went (expired, removed) while it was being sent: the answer cannot be completed.
      int fd = ex->fd;
      store_->post([fd] { upload::Store::close_file(fd); });
      loops_.here().erase(id);
      http.end(id);  // short of its Content-Length: the client sees the connection end
      return;
    }
    ex->next += bytes.size();
    int w = http.write(id, bytes);
    if (w < 0) return close_get(id);
    if (w == 0) {
      ex->want_write = true;
      return;
    }
    read_next(id, *ex);
  }

  void close_get(uint64_t id) {
    Exchange* ex = find(id);
    if (ex == nullptr) return;
    if (ex->fd >= 0) {
      int fd = ex->fd;
      store_->post([fd] { upload::Store::close_file(fd); });
    }
    loops_.here().erase(id);
  }

  int64_t max_file_size_ = 0;
  int64_t put_timeout_ = 300;
  uint64_t quota_ = 0;
  uint64_t global_quota_ = 0;  // bytes the whole store may hold; 0: no limit
  std::string domain_, base_, prefix_, key_;
  parley::PerLoop<std::unordered_map<uint64_t, Exchange>> loops_;
  std::unique_ptr<upload::Store> store_;
  parley::Metric uploads_, upload_bytes_, downloads_;
};

}  // namespace

PARLEY_MODULE(ModHttpUpload, "mod_http_upload", "1.0.0",
              parley::option("max_file_size", PARLEY_OPT_INT),
              parley::option("put_timeout", PARLEY_OPT_INT),
              parley::option("expire_after", PARLEY_OPT_INT),
              parley::option("expiry_sweep_interval", PARLEY_OPT_INT),
              parley::option("quota_bytes", PARLEY_OPT_INT),
              parley::option("quota_window", PARLEY_OPT_INT),
              parley::option("global_quota_bytes", PARLEY_OPT_INT),
              parley::option("service", PARLEY_OPT_STRING),
              parley::option("external_url", PARLEY_OPT_STRING),
              parley::option("secret", PARLEY_OPT_STRING),
              parley::hook<&ModHttpUpload::on_user_removed>(PARLEY_EVENT_USER_REMOVED))
