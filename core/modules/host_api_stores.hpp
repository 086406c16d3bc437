// The host side of the typed store entries of the module ABI (issue 11): the keyval
// store (keyval_get, keyval_put, keyval_remove, keyval_remove_user) and the map store
// (map_get, map_put, map_remove, map_clear). host_api.cpp puts
// them in the table.
#pragma once

#include <cstdint>

#include "parley/module.h"

namespace parley::host_stores {

int keyval_get(parley_module* m, parley_str user, parley_str key, parley_keyval_fn done, void* arg);
int keyval_put(parley_module* m, parley_str user, const parley_keyval_item* items, size_t count,
               uint64_t max_user_bytes, uint32_t flags, parley_keyval_fn done, void* arg);
int keyval_remove(parley_module* m, parley_str user, parley_str key, parley_keyval_fn done, void* arg);
int keyval_remove_user(parley_module* m, parley_str user, parley_keyval_fn done, void* arg);

int map_get(parley_module* m, parley_str user, parley_map_fn done, void* arg);
int map_put(parley_module* m, parley_str user, const parley_keyval_item* items, size_t count, uint64_t max_items,
            parley_map_fn done, void* arg);
int map_remove(parley_module* m, parley_str user, const parley_str* keys, size_t count, parley_map_fn done, void* arg);
int map_clear(parley_module* m, parley_str user, parley_map_fn done, void* arg);
int keyval_list(parley_module* m, parley_str user, parley_map_fn done, void* arg);  // issue 11: XEP-0227 export
// ABI 1.8: one key of many users of the instance's keyval store, in one operation.
int keyval_get_many(parley_module* m, const parley_str* users, size_t count, parley_str key, parley_map_fn done,
                    void* arg);

}  // namespace parley::host_stores
