#include "upload_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "upload_logic.hpp"

namespace upload {

namespace {

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

Store::Store(std::string dir, int64_t expire_after, int64_t sweep_every, int64_t quota_window)
    : dir_(std::move(dir)), expire_after_(expire_after), sweep_every_(sweep_every), quota_window_(quota_window) {}

Store::~Store() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& [token, up] : uploads_) {
    ::close(up.fd);
    ::unlink(path(token, "data.part").c_str());
  }
}

void Store::start() { thread_ = std::thread([this] { run(); }); }

void Store::post(std::function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void Store::run() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  scan();
  auto next_sweep = std::chrono::steady_clock::now() + std::chrono::seconds(sweep_every_);
  std::unique_lock lock(mutex_);
  while (true) {
    if (jobs_.empty() && !stopping_) wake_.wait_until(lock, next_sweep);
    if (stopping_) return;
    if (!jobs_.empty()) {
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
      continue;
    }
    if (std::chrono::steady_clock::now() >= next_sweep) {
      lock.unlock();
      sweep(now_s());
      lock.lock();
      next_sweep = std::chrono::steady_clock::now() + std::chrono::seconds(sweep_every_);
    }
  }
}

std::string Store::path(const std::string& token, const char* leaf) const {
  // The token was checked (valid_token) by every caller: 32 url-safe characters.
  std::string p = dir_ + "/" + token;
  if (leaf && *leaf) p += std::string("/") + leaf;
  return p;
}

bool Store::read_meta(const std::string& token, Meta& meta) const {
  FILE* f = std::fopen(path(token, "meta").c_str(), "re");
  if (!f) return false;
  char buf[2048];
  std::string lines[5];
  for (auto& line : lines) {
    if (!std::fgets(buf, sizeof buf, f)) {
      std::fclose(f);
      return false;
    }
    line = buf;
    if (!line.empty() && line.back() == '\n') line.pop_back();
  }
  std::fclose(f);
  meta.owner = lines[0];
  meta.filename = lines[1];
  meta.content_type = lines[2];
  meta.size = std::strtoull(lines[3].c_str(), nullptr, 10);
  meta.created = std::strtoll(lines[4].c_str(), nullptr, 10);
  return true;
}

void Store::remove_slot(const std::string& token) {
  ::unlink(path(token, "data").c_str());
  ::unlink(path(token, "meta").c_str());
  ::unlink(path(token, "data.part").c_str());
  ::rmdir(path(token, nullptr).c_str());
}

void Store::scan() {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return;
  std::vector<std::pair<int64_t, std::pair<std::string, uint64_t>>> found;
  while (dirent* e = ::readdir(d)) {
    std::string token = e->d_name;
    if (!valid_token(token)) continue;
    Meta meta;
    if (!read_meta(token, meta)) {
      remove_slot(token);  // an upload cut by a stop: never completed
      continue;
    }
    found.push_back({meta.created, {meta.owner, meta.size}});
    stored_ += meta.size;
  }
  ::closedir(d);
  std::sort(found.begin(), found.end());
  for (auto& [t, os] : found) log_[os.first].push_back({t, os.second});
}

bool Store::open_upload(const std::string& token, uint64_t id) {
  if (!valid_token(token) || uploads_.count(token)) return false;
  if (::mkdir(path(token, nullptr).c_str(), 0700) != 0) return false;  // exists: used already or under way
  int fd = ::open(path(token, "data.part").c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    ::rmdir(path(token, nullptr).c_str());
    return false;
  }
  uploads_[token] = Upload{fd, id};
  return true;
}

bool Store::write_upload(const std::string& token, uint64_t id, const std::string& bytes) {
  auto it = uploads_.find(token);
  if (it == uploads_.end() || it->second.id != id) return false;
  return write_all(it->second.fd, bytes.data(), bytes.size());
}

bool Store::finish_upload(const std::string& token, uint64_t id, const Meta& meta) {
  auto it = uploads_.find(token);
  if (it == uploads_.end() || it->second.id != id) return false;
  int fd = it->second.fd;
  uploads_.erase(it);
  struct stat st{};
  bool ok = ::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == meta.size;
  ok = ::close(fd) == 0 && ok;
  if (ok) {
    std::string text = meta.owner + "\n" + meta.filename + "\n" + meta.content_type + "\n" +
                       std::to_string(meta.size) + "\n" + std::to_string(meta.created) + "\n";
    std::string tmp = path(token, "meta.part");
    int mfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ok = mfd >= 0 && write_all(mfd, text.data(), text.size());
    if (mfd >= 0) ok = ::close(mfd) == 0 && ok;
    // data first: a meta names a complete file (a GET opens data, then reads meta).
    ok = ok && ::rename(path(token, "data.part").c_str(), path(token, "data").c_str()) == 0;
    ok = ok && ::rename(tmp.c_str(), path(token, "meta").c_str()) == 0;
    if (!ok) ::unlink(tmp.c_str());
  }
  if (!ok) {
    remove_slot(token);
    return false;
  }
  log_[meta.owner].push_back({meta.created, meta.size});
  stored_ += meta.size;
  return true;
}

void Store::abort_upload(const std::string& token, uint64_t id) {
  auto it = uploads_.find(token);
  if (it == uploads_.end() || it->second.id != id) return;
  ::close(it->second.fd);
  uploads_.erase(it);
  remove_slot(token);
}

int Store::open_file(const std::string& token, Meta& meta) {
  if (!valid_token(token)) return -1;
  int fd = ::open(path(token, "data").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (!read_meta(token, meta)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string Store::read_at(int fd, uint64_t offset, size_t max) {
  std::string out(max, '\0');
  size_t got = 0;
  while (got < max) {
    ssize_t n = ::pread(fd, out.data() + got, max - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

void Store::close_file(int fd) {
  if (fd >= 0) ::close(fd);
}

uint64_t Store::used(const std::string& owner, int64_t now) {
  auto it = log_.find(owner);
  if (it == log_.end()) return 0;
  auto& entries = it->second;
  while (!entries.empty() && entries.front().first + quota_window_ <= now) entries.pop_front();
  uint64_t sum = 0;
  for (auto& e : entries) sum += e.second;
  if (entries.empty()) log_.erase(it);
  return sum;
}

int64_t Store::free_at(const std::string& owner, uint64_t quota, uint64_t need, int64_t now) {
  uint64_t total = used(owner, now);
  if (total + need <= quota) return 0;
  auto it = log_.find(owner);
  if (it == log_.end()) return 0;
  // The oldest uploads leave the window first.
  for (auto& [t, size] : it->second) {
    total -= size;
    if (total + need <= quota) return t + quota_window_;
  }
  return now + quota_window_;
}

void Store::remove_owner(const std::string& owner) {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return;
  std::vector<std::string> tokens;
  while (dirent* e = ::readdir(d)) {
    std::string token = e->d_name;
    Meta meta;
    if (valid_token(token) && read_meta(token, meta) && meta.owner == owner) {
      tokens.push_back(token);
      stored_ -= std::min(stored_, meta.size);
    }
  }
  ::closedir(d);
  for (const std::string& t : tokens) remove_slot(t);
  log_.erase(owner);
}

size_t Store::sweep(int64_t now) {
  if (expire_after_ <= 0) return 0;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return 0;
  std::vector<std::string> tokens;
  while (dirent* e = ::readdir(d)) {
    std::string token = e->d_name;
    Meta meta;
    if (valid_token(token) && read_meta(token, meta) && meta.created + expire_after_ <= now) {
      tokens.push_back(token);
      stored_ -= std::min(stored_, meta.size);
    }
  }
  ::closedir(d);
  for (const std::string& t : tokens) remove_slot(t);
  return tokens.size();
}

}  // namespace upload
