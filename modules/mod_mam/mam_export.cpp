// mod_mam's XEP-0227 export and import: see mam_export.hpp.
#include "mam_export.hpp"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mam_logic.hpp"
#include "parley/sdk/stamp.hpp"

namespace parley::mod_mam {
namespace {

constexpr const char* kNsMam = "urn:xmpp:mam:2";
constexpr const char* kNsForward = "urn:xmpp:forward:0";
constexpr const char* kNsDelay = "urn:xmpp:delay";
constexpr const char* kNsClient = "jabber:client";

// Entries per page read for an export, and appends in flight for an import: a page's
// elements are all the module holds of an archive at once.
constexpr uint32_t kExportPage = 128;
constexpr size_t kImportWindow = 256;

std::string plural(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

struct ExportState {
  AccountData data;
  std::string owner;
  uint64_t min_id = 0;  // the retention bound, as queries apply it (mod_mam.cpp, min_kept_id)
  uint64_t after = 0;
  size_t count = 0;
  ArchiveIds ids;  // as queries show them
};

void export_page(const Host* host, std::shared_ptr<ExportState> st) {
  ArchiveQuery q;
  q.owner = st->owner;
  q.min_id = st->min_id;
  q.page_after = st->after;
  q.max = kExportPage;
  bool ok = host->archive_query(q, [host, st](Result<ArchivePage, std::string> r) {
    if (!r) return st->data.fail("reading the archive failed: " + r.error());
    const ArchivePage& page = *r;
    for (size_t i = 0; i < page.size(); ++i) {
      auto e = page.at(i);
      st->after = e.id;
      auto original = host->parse(e.payload);
      if (!original) continue;  // as a query does: an entry that is not a stanza is not sent
      Element result = host->element("result", kNsMam);
      result.set_attr("id", st->ids.encode(e.id));
      auto fwd = result.add_child("forwarded", kNsForward);
      fwd.add_child("delay", kNsDelay).set_attr("stamp", xep0082_stamp(e.timestamp_us / 1000));
      fwd.add_child(std::move(*original));
      if (!st->data.add_to("archive", kPieMamNs, result))
        return st->data.fail("the export refused an archived message");
      ++st->count;
    }
    if (page.complete() || page.size() == 0) return st->data.done(plural(st->count, "archived message"));
    // The next page once parleyctl has taken most of this one (ABI 1.8).
    st->data.when_ready([host, st] { export_page(host, st); });
  });
  if (!ok) st->data.fail("the archive store refused the query");
}

struct ImportEntry {
  std::string with;
  std::string payload;
  int64_t timestamp_us = 0;
};

struct ImportState {
  AccountData data;
  std::string owner;
  std::vector<ImportEntry> entries;
  size_t next = 0;
  size_t in_flight = 0;
  size_t stored = 0;
  size_t skipped = 0;
  std::string error;
};

void import_window(const Host* host, std::shared_ptr<ImportState> st) {
  if (st->next == st->entries.size()) {
    std::string summary = plural(st->stored, "archived message");
    if (st->skipped > 0) summary += " (" + std::to_string(st->skipped) + " skipped: no message or no valid stamp)";
    return st->data.done(summary);
  }
  const size_t end = std::min(st->entries.size(), st->next + kImportWindow);
  // Counted before the appends: a completion never sees in_flight reach 0 while this
  // loop is still issuing the window.
  st->in_flight = end - st->next + 1;
  for (; st->next < end; ++st->next) {
    ImportEntry& e = st->entries[st->next];
    uint64_t id = host->archive_append_at(st->owner, e.with, e.payload, e.timestamp_us,
                                          [host, st](Result<ArchivePage, std::string> r) {
                                            if (!r && st->error.empty()) st->error = r.error();
                                            if (r) ++st->stored;
                                            if (--st->in_flight == 0) {
                                              if (!st->error.empty())
                                                return st->data.fail("storing the archive failed: " + st->error);
                                              import_window(host, st);
                                            }
                                          });
    if (id == 0) {
      if (st->error.empty()) st->error = "the archive store refused an append (its queue is full?)";
      --st->in_flight;
    }
    // The payloads are not needed once appended (the store copied them).
    std::string().swap(e.payload);
  }
  if (--st->in_flight == 0) {
    if (!st->error.empty()) return st->data.fail("storing the archive failed: " + st->error);
    import_window(host, st);
  }
}

}  // namespace

void export_archive(const Host& host, const Event& event, uint64_t min_id, const ArchiveIds& ids) {
  if (!host.supports(PARLEY_HOST_ENTRY_END(account_data_add_to))) return;
  AccountData data(host, event);
  if (!data.held()) return;
  auto st = std::make_shared<ExportState>(ExportState{data, event.user_bare(),
                                                      min_id, 0, 0, ids});
  export_page(&host, std::move(st));
}

void import_archive(const Host& host, const Event& event) {
  auto user_el = event.acc();
  auto archive = user_el ? user_el->child("archive", kPieMamNs) : std::nullopt;
  if (!archive) return;
  AccountData data(host, event);
  if (!data.held()) return;
  if (!host.supports(PARLEY_HOST_ENTRY_END(account_data_add_to)))
    return data.fail("this server cannot import an archive (module ABI 1.6 needed)");
  const std::string owner = event.user_bare();
  auto st = std::make_shared<ImportState>(ImportState{data, owner, {}, 0, 0, 0, 0, {}});
  // Copied out of the document now: it is borrowed for the hook's call only.
  for (auto result : archive->children()) {
    if (result.name() != "result" || result.xmlns() != kNsMam) continue;
    auto fwd = result.child("forwarded", kNsForward);
    auto message = fwd ? fwd->child("message", kNsClient) : std::nullopt;
    auto delay = fwd ? fwd->child("delay", kNsDelay) : std::nullopt;
    auto stamp = delay ? xep0082_parse_us(delay->attr("stamp").value_or("")) : std::nullopt;
    if (!message || !stamp || *stamp <= 0) {
      ++st->skipped;
      continue;
    }
    // The other party, as archiving records it: 'to' of what the owner sent (a message
    // without 'from' in the owner's archive is one the owner sent), else 'from'.
    const std::string_view from = message->attr("from").value_or("");
    const std::string_view to = message->attr("to").value_or("");
    std::string_view with = from.empty() || bare_jid(from) == owner ? to : from;
    if (with.empty()) {
      ++st->skipped;
      continue;
    }
    st->entries.push_back(ImportEntry{std::string(with), message->serialize(), *stamp});
  }
  import_window(&host, std::move(st));
}

}  // namespace parley::mod_mam
