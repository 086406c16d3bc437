// tools/parley-bench/proc_stats.hpp - what the server process costs, read from /proc/PID.
#pragma once

#include <cstdint>
#include <string>

#include "parley/result.hpp"

namespace parley::bench {

struct ProcSample {
  double cpu_s = 0;      // user + system time of all threads so far
  uint64_t rss_kib = 0;  // resident set size (VmRSS)
};

Result<ProcSample, std::string> sample_process(int pid);

// The generator's own CPU seconds (user + system), to show whether it was the bottleneck.
double self_cpu_seconds();

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
uint64_t raise_file_limit();

}  // namespace parley::bench
