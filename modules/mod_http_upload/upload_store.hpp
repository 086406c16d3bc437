// mod_http_upload's file store, run on the module's own I/O thread: every
// file system call of the module happens here, never on a worker loop. Jobs
// come in through post() (a short lock on the queue) and answers go back to
// the loop that asked through the host's post (parley::post), so the loops
// keep every exchange's state without locks.
//
// Layout under DIR (data_dir/upload/HOST): one directory per slot, named by
// its token (32 url-safe characters, checked before any path is made, so no
// request can name anything outside DIR): `data` (the bytes), `meta` (owner,
// file name, content type, size, time of the upload, one per line); while a
// PUT runs, `data.part`.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace upload {

struct Meta {
  std::string owner;
  std::string filename;
  std::string content_type;
  uint64_t size = 0;
  int64_t created = 0;  // unix seconds
};

class Store {
 public:
  // expire_after: seconds a file is kept (0: for ever); sweep_every: how often
  // expired files are looked for; quota_window: seconds over which a user's
  // uploaded bytes count against the quota.
  Store(std::string dir, int64_t expire_after, int64_t sweep_every, int64_t quota_window);
  ~Store();  // stops the thread; jobs not run yet are dropped
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  void start();
  // Runs `job` on the I/O thread, after the jobs posted before it.
  void post(std::function<void()> job);

  // ---- Called on the I/O thread only (from posted jobs) ----
  // A PUT (`id`: its exchange; a second PUT of the same slot finds the
  // directory there and is refused, and cannot touch the first's file):
  // creates TOKEN/data.part (false: exists already, or cannot).
  bool open_upload(const std::string& token, uint64_t id);
  bool write_upload(const std::string& token, uint64_t id, const std::string& bytes);
  // Completes it: data.part holds `meta.size` bytes, then meta and data.
  bool finish_upload(const std::string& token, uint64_t id, const Meta& meta);
  void abort_upload(const std::string& token, uint64_t id);
  // A GET: opens TOKEN/data read-only (fd >= 0) and reads its meta.
  int open_file(const std::string& token, Meta& meta);
  // Reads up to `max` bytes at `offset` (pread); empty on error or end.
  static std::string read_at(int fd, uint64_t offset, size_t max);
  static void close_file(int fd);
  // Bytes `owner` uploaded in the window ending `now`, and when `need`
  // bytes would be free again (0 if now).
  uint64_t used(const std::string& owner, int64_t now);
  int64_t free_at(const std::string& owner, uint64_t quota, uint64_t need, int64_t now);
  // Bytes of every file stored (the service's whole store: global_quota_bytes).
  uint64_t stored() const { return stored_; }
  void remove_owner(const std::string& owner);  // an account removed
  size_t sweep(int64_t now);                    // expiry; returns the files removed

 private:
  void run();
  void scan();  // at start: stale .part files go, the quota log is rebuilt
  bool read_meta(const std::string& token, Meta& meta) const;
  void remove_slot(const std::string& token);
  std::string path(const std::string& token, const char* leaf) const;

  std::string dir_;
  int64_t expire_after_;
  int64_t sweep_every_;
  int64_t quota_window_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;

  // The thread's own.
  struct Upload {
    int fd;
    uint64_t id;
  };
  std::unordered_map<std::string, Upload> uploads_;  // token -> data.part
  std::map<std::string, std::deque<std::pair<int64_t, uint64_t>>> log_;  // owner -> (time, size)
  uint64_t stored_ = 0;  // bytes of the complete files in the store
};

}  // namespace upload
