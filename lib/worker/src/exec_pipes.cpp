#include "exec_pipes.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <cerrno>
#include <vector>

namespace taskq::worker {

using boost::system::error_code;

ExecPipes::ExecPipes(boost::asio::io_context& io, std::span<char> scratch, std::string label, Progress progress)
    : scratch_(scratch), label_(std::move(label)), progress_(std::move(progress)), out_(io), err_(io), side_(io) {}

void ExecPipes::start(Fd out, Fd err, Fd side) {
  out_.assign(out.release());
  err_.assign(err.release());
  side_.assign(side.release());
  watch(out_);
  watch(err_);
  watch(side_);
}

void ExecPipes::watch(Pipe& pipe) {
  pipe.async_wait(Pipe::wait_read, [self = shared_from_this(), &pipe](error_code ec) {
    if (ec || !pipe.is_open()) return;
    if (self->drain(pipe, reads_per_wakeup)) self->watch(pipe);
  });
}

// Reads until the pipe would block or `max_reads` reads were made (true: still open), or until
// it reaches EOF (false: closed).
bool ExecPipes::drain(Pipe& pipe, int max_reads) {
  for (int reads = 0; reads < max_reads;) {
    const ssize_t n = ::read(pipe.native_handle(), scratch_.data(), scratch_.size());
    if (n > 0) {
      take(pipe, std::string_view(scratch_.data(), static_cast<std::size_t>(n)));
      ++reads;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    error_code ignored;
    pipe.close(ignored);
    return false;
  }
  return true;
}

void ExecPipes::take(Pipe& pipe, std::string_view data) {
  if (&pipe == &out_)
    out_tail_.append(data);
  else if (&pipe == &err_)
    err_tail_.append(data);
  else
    on_side(data, false);
}

void ExecPipes::on_side(std::string_view data, bool at_end) {
  std::vector<SideMessage> msgs;
  side_parser_.feed(data, msgs);
  if (at_end) side_parser_.finish(msgs);
  for (auto& m : msgs) {
    switch (m.kind) {
      case SideMessage::Kind::progress:
        if (progress_) progress_(m.percent, m.text);
        break;
      case SideMessage::Kind::result:
        result_line_ = std::move(m.text);
        result_line_no_ = m.line;
        break;
      case SideMessage::Kind::snooze:
        snooze_line_ = m.delay;
        break;
    }
  }
  // Malformed lines are logged as they come, within the run's budget; the parser keeps only the
  // first few messages and counts the rest.
  const auto& errors = side_parser_.errors();
  for (; side_errors_logged_ < errors.size(); ++side_errors_logged_)
    if (log_.take()) spdlog::warn("{}: {}", label_, errors[side_errors_logged_]);
}

void ExecPipes::finish() {
  // What the process wrote just before exiting is still in the pipes: take it now rather than
  // wait for EOF, which a leftover grandchild holding the pipe could delay forever.
  for (Pipe* pipe : {&out_, &err_, &side_})
    if (pipe->is_open()) drain(*pipe, reads_at_exit);
  on_side({}, true);
  log_.add_suppressed(side_parser_.error_count() - side_parser_.errors().size());
  close();
}

void ExecPipes::close() {
  error_code ignored;
  out_.close(ignored);
  err_.close(ignored);
  side_.close(ignored);
  progress_ = nullptr;
}

void ExecPipes::fill(ExecFacts& facts) const {
  facts.result_line = result_line_;
  facts.result_line_no = result_line_no_;
  facts.snooze_line = snooze_line_;
  facts.stdout_all = out_tail_.str();
  facts.stdout_truncated = out_tail_.dropped() > 0;
  facts.stderr_tail = err_tail_.str();
}

}  // namespace taskq::worker
