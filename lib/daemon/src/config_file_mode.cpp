#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "taskq/daemon/app.hpp"

using taskq::config::Config;

namespace taskq::daemon {

std::optional<std::string> config_file_warning(const Config& config) {
  struct stat st {};
  if (config.source.empty() || ::stat(config.source.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const unsigned mode = st.st_mode & 07777;
  std::string who;
  if (mode & (S_IROTH | S_IWOTH))
    who = "every user of this host";
  else if (mode & S_IWGRP)
    who = "group " + std::to_string(st.st_gid) + " (it can change it)";
  else if ((mode & S_IRGRP) && st.st_gid != ::getegid())
    who = "group " + std::to_string(st.st_gid) + ", which is not this daemon's group";
  if (who.empty()) return std::nullopt;
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", mode);
  return "config file " + config.source + " (mode " + octal + ") is open to " + who +
         ", and it may hold secrets (a database password, webhook headers): chmod 600 " + config.source +
         ", or chmod 640 and chown root:taskq so that only the daemons' group reads it";
}

}  // namespace taskq::daemon
