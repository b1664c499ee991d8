// The read caps of a running exec handler's pipes (exec_pipes.hpp): a handler writing without
// pause gets at most reads_per_wakeup reads per wake-up of the executor's loop, and at exit what
// is left is taken with at most reads_at_exit reads, so a grandchild still writing cannot hold
// the loop. Real pipes, filled past what the caps allow.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "exec_pipes.hpp"

using namespace taskq;
using namespace taskq::worker;

namespace {

constexpr std::size_t block = 4096;            // the test's read buffer: one block a read
constexpr std::size_t blocks_written = 64;     // 256 KiB, more than either cap reads
constexpr std::size_t pipe_size = 512 * 1024;  // holds all of it without a reader

// A non-blocking pipe, enlarged, filled with `blocks_written` blocks: block k is "%07zu\n"
// of k repeated, so the tail shows how far a reader got.
struct FilledPipe {
  Fd read_end, write_end, watch;  // `watch`: a duplicate of the read end, to count what is left
  FilledPipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
    read_end = Fd(fds[0]);
    write_end = Fd(fds[1]);
    REQUIRE(::fcntl(write_end.get(), F_SETPIPE_SZ, static_cast<int>(pipe_size)) >= static_cast<int>(pipe_size));
    for (std::size_t k = 0; k < blocks_written; ++k) {
      char line[9];
      std::snprintf(line, sizeof line, "%07zu\n", k);
      std::string data;
      while (data.size() < block) data += line;
      REQUIRE(::write(write_end.get(), data.data(), block) == static_cast<ssize_t>(block));
    }
    watch = Fd(::dup(read_end.get()));
    REQUIRE(watch);
  }
  [[nodiscard]] std::size_t left() const {
    int n = 0;
    REQUIRE(::ioctl(watch.get(), FIONREAD, &n) == 0);
    return static_cast<std::size_t>(n);
  }
};

Fd empty_pipe(Fd& keep_writer) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
  keep_writer = Fd(fds[1]);
  return Fd(fds[0]);
}

// ExecPipes watching a filled stdout and empty stderr and fd 3, with a read buffer of one block.
struct Watched {
  boost::asio::io_context io;
  std::string scratch = std::string(block, '\0');
  std::shared_ptr<ExecPipes> pipes =
      std::make_shared<ExecPipes>(io, std::span<char>(scratch.data(), scratch.size()), "job 1", nullptr);
  FilledPipe out;
  Fd err_writer, side_writer;
  Watched() { pipes->start(std::move(out.read_end), empty_pipe(err_writer), empty_pipe(side_writer)); }
};

}  // namespace

TEST_CASE("exec pipes: a handler writing without pause gets reads_per_wakeup reads per wake-up of the loop",
          "[exec][pipes]") {
  Watched w;
  auto& [io, scratch, pipes, out, err_writer, side_writer] = w;
  REQUIRE(out.left() == blocks_written * block);

  // One wake-up: the loop runs the stdout handler once.
  REQUIRE(io.run_one_for(std::chrono::seconds(5)) == 1);
  CHECK(out.left() == (blocks_written - reads_per_wakeup) * block);
  // The next wake-up takes the next reads_per_wakeup blocks, and so on: stdout does not hold the loop.
  REQUIRE(io.run_one_for(std::chrono::seconds(5)) == 1);
  CHECK(out.left() == (blocks_written - 2 * reads_per_wakeup) * block);
  pipes->close();
}

TEST_CASE("exec pipes: at exit what is left is taken with at most reads_at_exit reads", "[exec][pipes]") {
  Watched w;
  auto& [io, scratch, pipes, out, err_writer, side_writer] = w;

  // The handler exited, but a grandchild holding stdout wrote (and may go on writing): finish()
  // takes reads_at_exit blocks and closes the pipe, whatever is left.
  pipes->finish();
  CHECK(out.left() == (blocks_written - reads_at_exit) * block);
  ExecFacts facts;
  pipes->fill(facts);
  char last[9];
  std::snprintf(last, sizeof last, "%07zu\n", static_cast<std::size_t>(reads_at_exit - 1));
  REQUIRE(facts.stdout_all.size() >= 8);
  CHECK(facts.stdout_all.substr(facts.stdout_all.size() - 8) == last);
  // Nothing is left to run on the loop: the pipes are closed.
  io.poll();
  CHECK(out.left() == (blocks_written - reads_at_exit) * block);
}
