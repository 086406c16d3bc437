// mod_private/private_export.hpp - private XML in XEP-0227 export and import (issue 11):
// the account's <query xmlns='jabber:iq:private'/> holding every stored element, stored
// per namespace as a set would store it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "parley/module.hpp"

namespace mod_private {

inline constexpr const char* ns_private = "jabber:iq:private";

// The (namespace, serialized <query/> holding its elements) groups of `query`, as a set
// stores them; an element in no namespace of its own is an error (its text).
parley::Result<std::vector<std::pair<std::string, std::string>>, std::string> group_private(
    const parley::Host& host, parley::ElementView query);

// Adds one <query/> with the elements of every namespace `user` stored, then ends the hold.
void export_private(const parley::Host& host, const parley::AccountData& data, const std::string& user);

// Stores the groups for `user` (one put, under the quota), then ends the hold.
void import_private(const parley::Host& host, const parley::AccountData& data, const std::string& user,
                    const std::vector<std::pair<std::string, std::string>>& groups, uint64_t max_bytes);

}  // namespace mod_private
