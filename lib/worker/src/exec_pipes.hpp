#pragma once
// The output of one running exec handler: its stdout, stderr and side channel (fd 3), read on
// the executor's loop whenever readable, into bounded state whatever the handler writes:
//   - at most reads_per_wakeup reads (of 64 KiB) of a pipe per wake-up, so a handler writing
//     without pause shares the loop with every other job instead of holding it;
//   - stdout and stderr keep their last 64 KiB (OutputTail), fd 3 one line of at most 1 MiB, the
//     parser the first few error messages (side_errors_kept) and a count of the rest;
//   - at exit, what is left in a pipe is taken with at most reads_at_exit reads: a grandchild
//     that inherited the pipe and keeps writing cannot hold the loop.
// Progress lines go to a callback (the executor coalesces them); malformed lines are logged as
// they come, within the run's LogBudget. The read buffer is the executor's, shared by every pipe.
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "exec_protocol.hpp"
#include "run_output.hpp"
#include "subprocess.hpp"

namespace taskq::worker {

inline constexpr int reads_per_wakeup = 4;
inline constexpr int reads_at_exit = 16;

class ExecPipes : public std::enable_shared_from_this<ExecPipes> {
 public:
  using Progress = std::function<void(int percent, std::string_view message)>;
  /// `label` names the job in log lines; `scratch` is the read buffer.
  ExecPipes(boost::asio::io_context& io, std::span<char> scratch, std::string label, Progress progress);

  /// Starts watching the handler's stdout, stderr and fd 3 (non-blocking read ends).
  void start(Fd out, Fd err, Fd side);
  /// The handler exited: takes what is left in the pipes (bounded, see above), reads a last
  /// side-channel line without newline, and closes the pipes.
  void finish();
  /// Closes the pipes; pending reads end.
  void close();
  /// The output fields of `facts`: the tails, the last result and snooze lines.
  void fill(ExecFacts& facts) const;
  /// Log lines this run may still write.
  LogBudget& log() noexcept { return log_; }

 private:
  using Pipe = boost::asio::posix::stream_descriptor;
  void watch(Pipe& pipe);
  bool drain(Pipe& pipe, int max_reads);
  void take(Pipe& pipe, std::string_view data);
  void on_side(std::string_view data, bool at_end);

  std::span<char> scratch_;
  std::string label_;
  Progress progress_;
  Pipe out_, err_, side_;
  OutputTail out_tail_, err_tail_;
  SideChannelParser side_parser_;
  std::size_t side_errors_logged_ = 0;
  std::optional<std::string> result_line_;
  std::size_t result_line_no_ = 0;
  std::optional<Duration> snooze_line_;
  LogBudget log_;
};

}  // namespace taskq::worker
