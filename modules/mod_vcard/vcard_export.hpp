// mod_vcard/vcard_export.hpp - the vCard in XEP-0227 export and import (issue 11): the
// account's <vCard xmlns='vcard-temp'/> as a child of its <user/>.
#pragma once

#include <cstdint>
#include <string>

#include "parley/module.hpp"

namespace mod_vcard {

inline constexpr const char* ns_vcard = "vcard-temp";
inline constexpr std::string_view vcard_key = "vcard";

// Adds the stored vCard of `user` (the localpart) to the export, then ends the hold.
void export_vcard(const parley::Host& host, const parley::AccountData& data, const std::string& user);
// Stores `xml` (the serialized <vCard/> of the file) as the vCard of `user`.
void import_vcard(const parley::Host& host, const parley::AccountData& data, const std::string& user,
                  const std::string& xml);

}  // namespace mod_vcard
