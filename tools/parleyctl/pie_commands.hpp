// tools/parleyctl/pie_commands.hpp - parleyctl export and import (XEP-0227, issue 11).
#pragma once

#include <string>
#include <vector>

#include "core/config/config.hpp"

namespace parley::ctl {

// parleyctl export [--host H] [--user U] FILE: every account (of H, or only U@H) through
// the running server's export-user, one <user/> at a time, into FILE (written beside it
// and renamed when complete). Returns the exit code.
int run_export(const config::Config& config, const std::vector<std::string>& args);
// parleyctl import [--replace] FILE: the file is read through once to check it (an error
// names its line and nothing is imported), then each <user/> goes to the running
// server's import-user. Returns 0 if every account was imported or skipped.
int run_import(const config::Config& config, const std::vector<std::string>& args);

}  // namespace parley::ctl
