#include "core/http_client/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <utility>

namespace parley::http_client {

namespace {

// curl_global_init is not thread-safe before libcurl 7.84: once, on the first
// client, whichever loop makes it.
void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool is_token(std::string_view s) {
  if (s.empty() || s.size() > 16) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

}  // namespace

struct Client::Socket {
  uv_poll_t poll{};
  Client* client = nullptr;
  int fd = -1;
};

struct Client::Transfer {
  uint64_t id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string request_body;
  std::string response_body;
  size_t max_response_bytes = 0;
  bool too_large = false;
  const void* owner = nullptr;
  Done done;
  char error[CURL_ERROR_SIZE] = {};
  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (headers) curl_slist_free_all(headers);
  }
};

namespace {

size_t on_body(char* data, size_t size, size_t n, void* userp) {
  auto* t = static_cast<Client::Transfer*>(userp);
  size_t bytes = size * n;
  if (t->response_body.size() + bytes > t->max_response_bytes) {
    t->too_large = true;
    return 0;  // CURLE_WRITE_ERROR: the transfer ends
  }
  t->response_body.append(data, bytes);
  return bytes;
}

}  // namespace

std::string check_request(const Request& request) {
  if (!is_token(request.method)) return "the method must be an upper-case token";
  if (!starts_with_ci(request.url, "http://") && !starts_with_ci(request.url, "https://"))
    return "only http:// and https:// URLs";
  for (char c : request.url)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return "the URL has a space or a control character";
  for (const std::string& h : request.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0) return "a header without a name";
    for (char c : h)
      if (c == '\r' || c == '\n' || c == '\0') return "a header with CR, LF or NUL";
  }
  return {};
}

Client::Client(uv_loop_t* loop, Limits limits) : loop_(loop), limits_(limits) {
  global_init();
  multi_ = curl_multi_init();
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  CURLM* multi = static_cast<CURLM*>(multi_);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Client::on_socket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Client::on_timer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
}

Client::~Client() {
  // close() ran on the loop (Server's shutdown); if the loop never ran, the
  // handles were closed by its final walk and only memory is left.
  if (!multi_) return;
  CURLM* multi = static_cast<CURLM*>(multi_);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, nullptr);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, nullptr);
  for (auto& [id, t] : transfers_) curl_multi_remove_handle(multi, t->easy);
  transfers_.clear();
  curl_multi_cleanup(multi);
}

uint64_t Client::start(Request request, const void* owner, Done done) {
  if (closed_ || transfers_.size() >= limits_.max_requests || !check_request(request).empty()) return 0;
  auto t = std::make_unique<Transfer>();
  t->id = next_id_++;
  t->owner = owner;
  t->done = std::move(done);
  t->max_response_bytes = limits_.max_response_bytes;
  t->request_body = std::move(request.body);
  t->easy = curl_easy_init();
  if (!t->easy) return 0;
  CURL* e = t->easy;
  curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout_ms));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.timeout_ms));
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_USERAGENT, "parley");
  if (request.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (request.method == "POST" || !t->request_body.empty()) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->request_body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request_body.data());
    if (request.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  // No "Expect: 100-continue" round trip before a body (a second's wait on
  // servers that never answer it).
  request.headers.emplace_back("Expect:");
  for (const std::string& h : request.headers) {
    curl_slist* next = curl_slist_append(t->headers, h.c_str());
    if (!next) return 0;
    t->headers = next;
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  if (curl_multi_add_handle(static_cast<CURLM*>(multi_), e) != CURLM_OK) return 0;
  uint64_t id = t->id;
  transfers_.emplace(id, std::move(t));
  return id;
}

size_t Client::cancel_owner(const void* owner) {
  std::vector<uint64_t> ids;
  for (const auto& [id, t] : transfers_)
    if (t->owner == owner) ids.push_back(id);
  for (uint64_t id : ids) {
    Response r;
    r.error = "cancelled";
    finish(id, std::move(r));
  }
  return ids.size();
}

void Client::close() {
  if (closed_) return;
  closed_ = true;
  while (!transfers_.empty()) {
    Response r;
    r.error = "cancelled";
    finish(transfers_.begin()->first, std::move(r));
  }
  // Connections libcurl kept for reuse: their pollers first (libcurl then
  // finds none to remove), then the sockets with the multi handle.
  while (!sockets_.empty()) {
    Socket* socket = *sockets_.begin();
    curl_multi_assign(static_cast<CURLM*>(multi_), socket->fd, nullptr);
    close_socket(socket);
  }
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
  multi_ = nullptr;
  uv_timer_stop(timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  timer_ = nullptr;
}

void Client::finish(uint64_t id, Response&& response) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  std::unique_ptr<Transfer> t = std::move(it->second);
  transfers_.erase(it);
  if (multi_) curl_multi_remove_handle(static_cast<CURLM*>(multi_), t->easy);
  Done done = std::move(t->done);
  t.reset();
  if (done) done(std::move(response));
}

void Client::close_socket(Socket* socket) {
  sockets_.erase(socket);
  socket->client = nullptr;
  uv_poll_stop(&socket->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&socket->poll),
           [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
}

int Client::on_socket(void* /*easy*/, int fd, int action, void* userp, void* socketp) {
  auto* self = static_cast<Client*>(userp);
  auto* socket = static_cast<Socket*>(socketp);
  if (action == CURL_POLL_REMOVE) {
    if (socket) {
      if (self->multi_) curl_multi_assign(static_cast<CURLM*>(self->multi_), fd, nullptr);
      self->close_socket(socket);
    }
    return 0;
  }
  if (!socket) {
    socket = new Socket;
    socket->client = self;
    socket->fd = fd;
    socket->poll.data = socket;
    if (uv_poll_init_socket(self->loop_, &socket->poll, fd) != 0) {
      delete socket;
      return -1;  // libcurl fails the transfer
    }
    self->sockets_.insert(socket);
    curl_multi_assign(static_cast<CURLM*>(self->multi_), fd, socket);
  }
  int events = 0;
  if (action == CURL_POLL_IN || action == CURL_POLL_INOUT) events |= UV_READABLE;
  if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT) events |= UV_WRITABLE;
  uv_poll_start(&socket->poll, events, &Client::on_poll);
  return 0;
}

int Client::on_timer(void* /*multi*/, long timeout_ms, void* userp) {
  auto* self = static_cast<Client*>(userp);
  if (!self->timer_) return 0;
  // libcurl may not be called back from here: even a 0 waits for the loop.
  if (timeout_ms < 0) uv_timer_stop(self->timer_);
  else uv_timer_start(self->timer_, &Client::on_timeout, static_cast<uint64_t>(timeout_ms), 0);
  return 0;
}

void Client::on_timeout(uv_timer_t* timer) {
  static_cast<Client*>(timer->data)->drive(CURL_SOCKET_TIMEOUT, 0);
}

void Client::on_poll(uv_poll_t* poll, int status, int events) {
  auto* socket = static_cast<Socket*>(poll->data);
  if (!socket->client) return;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  socket->client->drive(socket->fd, flags);
}

void Client::drive(int fd, int flags) {
  if (!multi_ || driving_) return;
  driving_ = true;
  int running = 0;
  curl_multi_socket_action(static_cast<CURLM*>(multi_), fd, flags, &running);
  driving_ = false;
  collect();
}

void Client::collect() {
  // Completions run here, outside libcurl's callbacks: a done() may start
  // or cancel requests.
  while (multi_) {
    int left = 0;
    CURLMsg* msg = curl_multi_info_read(static_cast<CURLM*>(multi_), &left);
    if (!msg) break;
    if (msg->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
    if (!t) continue;
    CURLcode code = msg->data.result;
    Response r;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r.status);
    if (code == CURLE_OK) {
      r.body = std::move(t->response_body);
    } else {
      r.status = 0;
      if (code == CURLE_OPERATION_TIMEDOUT) r.error = "timeout";
      else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST) r.error = "connect";
      else if (code == CURLE_WRITE_ERROR && t->too_large) r.error = "too-large";
      else r.error = t->error[0] ? std::string(t->error) : std::string(curl_easy_strerror(code));
    }
    finish(t->id, std::move(r));
  }
}

}  // namespace parley::http_client
