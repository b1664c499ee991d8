#include "taskq/metrics/process.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace taskq::metrics {

namespace {

// Seconds since the epoch at which the machine booted (btime of /proc/stat).
std::optional<double> boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(1 << 20, '\n');
  }
  return std::nullopt;
}

}  // namespace

ProcessSample sample_process() {
  ProcessSample s;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // The command name (field 2) is in parentheses and may hold spaces: fields restart after ')'.
    const auto close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream rest(line.substr(close + 2));
      std::vector<std::string> f;  // f[0] is field 3 (state)
      for (std::string x; rest >> x;) f.push_back(x);
      if (f.size() > 21 && ticks > 0) {
        s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime, stime: fields 14, 15
        if (const auto boot = boot_time()) s.start_time = *boot + std::stod(f[19]) / ticks;  // starttime: 22
        s.virtual_bytes = std::stod(f[20]);                                                  // vsize: 23
        s.resident_bytes = std::stod(f[21]) * page;                                          // rss: 24
      }
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    double n = 0;
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    s.open_fds = n - 1;  // the directory's own descriptor
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    s.max_fds = static_cast<double>(rl.rlim_cur);
  return s;
}

void add_process_metrics(Registry& registry, const std::string& program, const std::string& version) {
  registry.gauge("taskq_build_info", "The running taskq program and its version (always 1).", {"program", "version"})
      .with({program, version})
      .set(1);
  auto& cpu =
      registry.counter_read("process_cpu_seconds_total", "User and system CPU time spent, in seconds.").with({});
  auto& rss = registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.").with({});
  auto& vsz = registry.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.").with({});
  auto& start =
      registry.gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.")
          .with({});
  auto& fds = registry.gauge("process_open_fds", "Open file descriptors.").with({});
  auto& max_fds = registry.gauge("process_max_fds", "The most file descriptors the process may open.").with({});
  registry.on_collect([&cpu, &rss, &vsz, &start, &fds, &max_fds] {
    const auto s = sample_process();
    if (s.cpu_seconds) cpu.set(*s.cpu_seconds);
    if (s.resident_bytes) rss.set(*s.resident_bytes);
    if (s.virtual_bytes) vsz.set(*s.virtual_bytes);
    if (s.start_time) start.set(*s.start_time);
    if (s.open_fds) fds.set(*s.open_fds);
    if (s.max_fds) max_fds.set(*s.max_fds);
  });
}

}  // namespace taskq::metrics
