#include "core/router/iq_handlers.hpp"

#include <algorithm>

namespace parley {

void IqHandlers::add(IqScope scope, std::string type, std::string xmlns, IqHandler handler) {
  handlers_[std::make_tuple(scope, std::move(type), std::move(xmlns))] = std::move(handler);
}

const IqHandler* IqHandlers::find(IqScope scope, std::string_view type, std::string_view xmlns) const {
  auto it = handlers_.find(std::make_tuple(scope, std::string(type), std::string(xmlns)));
  return it == handlers_.end() ? nullptr : &it->second;
}

void IqHandlers::add_server_feature(std::string feature) {
  if (std::find(server_features_.begin(), server_features_.end(), feature) == server_features_.end())
    server_features_.push_back(std::move(feature));
}

}  // namespace parley
