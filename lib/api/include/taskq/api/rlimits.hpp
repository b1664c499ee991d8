#pragma once
// taskq-apid's limit on open files: each connection (event streams stay open) is a descriptor,
// and the usual soft limit of 1024 is low for a server.
#include <cstdint>
#include <optional>
#include <string>

namespace taskq::api {

/// Raises the soft limit on open files to the hard one. Returns the limit in effect (0 when it
/// cannot be read).
std::uint64_t raise_open_files();

/// The warning for a limit under 4096 (0: unknown, no warning).
std::optional<std::string> open_files_warning(std::uint64_t limit);

}  // namespace taskq::api
