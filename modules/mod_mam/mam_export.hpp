// mod_mam's part in XEP-0227 export and import (issue 11): the user's archive as
// <archive xmlns='urn:xmpp:pie:0#mam'/>, each entry a XEP-0313 <result/> with its
// <forwarded/> message and <delay stamp/> (the shape Prosody's mod_storage_xep0227 and
// ejabberd's exporters write).
#pragma once

#include <cstdint>

#include "parley/module.hpp"
#include "parley/sdk/archive_ids.hpp"

namespace parley::mod_mam {

inline constexpr const char* kPieMamNs = "urn:xmpp:pie:0#mam";

// ACCOUNT_EXPORT: reads the archive a page at a time (never the whole of it in the
// module) and adds each entry to the export's <archive/> (account_data_add_to, ABI 1.6);
// entries with ids below `min_id` (expired, not yet removed: the retention bound queries
// apply) are left out. Does nothing on a host without that entry.
void export_archive(const Host& host, const Event& event, uint64_t min_id, const ArchiveIds& ids);

// ACCOUNT_IMPORT: appends the file's <archive/> entries to the user's archive with their
// original timestamps (archive_append_at, ABI 1.6), a window at a time (the archive
// queue stays bounded); the ids are the archive's own (see docs/export_import.md).
// Entries without a message or a valid <delay stamp/> are skipped and counted. Fails
// (the account is removed again) on a host without that entry, or if an append fails.
void import_archive(const Host& host, const Event& event);

}  // namespace parley::mod_mam
