// tools/parleyctl/top.hpp - `parleyctl top`: a live view of the running
// server's figures (its `status`), refreshed like top(1).
#pragma once

#include <string>
#include <vector>

namespace parley::ctl {

// args: "top" [--once] [-n COUNT] [-d SECONDS]. Returns the exit code.
int run_top(const std::string& socket_path, const std::vector<std::string>& args);

}  // namespace parley::ctl
