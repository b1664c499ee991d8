// taskq_drain_bench: the measuring half of bench/run. Each subcommand measures one thing and prints
// one JSON object on stdout (progress and errors go to stderr; exit 1 on any failure).
//
//   drain   --url U --schema S [--threads 2] [--batch 1000] [--queue default] [--expect N]
//       Library-level drain: THREADS threads, each with its own Store (one connection), registered
//       as a worker, loop claim(batch) -> complete(plain completed outcomes) until the queue is
//       empty. Timed from the moment every thread is connected and registered until the last
//       thread sees an empty claim. Also reports the time spent inside claim() and complete().
//   enqueue --url U --schema S --file F
//       Client::enqueue_jsonl of a JSON Lines file in-process: the enqueue path of
//       `taskctl enqueue --file` without process start, config loading and connecting.
//   parse   --file F
//       Only the client-side work of that path: read lines, parse JSON, map to EnqueueParams,
//       validate. No database.
//   single  --url U --schema S [--runs 200] [--warmup 5]
//       In-process single enqueue: connect, Client::enqueue(noop, {}), disconnect; the time of each
//       step (median, p90), to split the cost of one `taskctl enqueue` invocation.
//   spawn   [--runs 1] [--warmup 0] [--stdout FILE] -- PROGRAM [ARGS...]
//       Runs PROGRAM (posix_spawn, stdin /dev/null, stdout to FILE or /dev/null, stderr inherited)
//       RUNS times, one after the other, and reports each wall time from spawn to exit (ms).
//       Fails when a run exits non-zero.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/array.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <latch>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "taskq/core/error.hpp"
#include "taskq/core/json.hpp"
#include "taskq/queue/client.hpp"
#include "taskq/store/store.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

// ---------------------------------------------------------------------------------------------
// Arguments: --key value pairs; for spawn, everything after "--" is the command.

struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> command;

  [[nodiscard]] std::string get(const std::string& key, const std::string& fallback = {}) const {
    auto it = options.find(key);
    if (it != options.end()) return it->second;
    if (fallback.empty()) throw std::invalid_argument("missing --" + key);
    return fallback;
  }
  [[nodiscard]] long get_int(const std::string& key, long fallback) const {
    auto it = options.find(key);
    if (it == options.end()) return fallback;
    std::size_t used = 0;
    const long v = std::stol(it->second, &used);
    if (used != it->second.size() || v < 0) throw std::invalid_argument("--" + key + ": not a count: " + it->second);
    return v;
  }
};

Args parse_args(int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      a.command.assign(argv + i + 1, argv + argc);
      break;
    }
    if (arg.rfind("--", 0) != 0 || i + 1 >= argc) throw std::invalid_argument("bad argument: " + arg);
    a.options[arg.substr(2)] = argv[++i];
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Statistics over a series of samples.

double percentile(std::vector<double> v, double p) {  // nearest rank
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

boost::json::object summary_ms(const std::vector<double>& ms) {
  boost::json::object o;
  o["runs"] = ms.size();
  o["median_ms"] = round_to(median(ms), 3);
  o["p90_ms"] = round_to(percentile(ms, 90), 3);
  o["min_ms"] = round_to(ms.empty() ? 0 : *std::min_element(ms.begin(), ms.end()), 3);
  o["max_ms"] = round_to(ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()), 3);
  o["mean_ms"] =
      round_to(ms.empty() ? 0 : std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size()), 3);
  return o;
}

// Like boost::json::serialize, but doubles in plain decimal (3.15, not 3.15E0) for people reading it.
void write_json(std::ostream& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::object: {
      out << '{';
      bool first = true;
      for (const auto& [key, item] : v.get_object()) {
        if (!first) out << ',';
        first = false;
        out << boost::json::serialize(boost::json::value(key)) << ':';
        write_json(out, item);
      }
      out << '}';
      break;
    }
    case boost::json::kind::array: {
      out << '[';
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out << ',';
        first = false;
        write_json(out, item);
      }
      out << ']';
      break;
    }
    case boost::json::kind::double_: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6f", v.get_double());
      std::string text = buf;
      text.erase(text.find_last_not_of('0') + 1);
      if (!text.empty() && text.back() == '.') text.pop_back();
      out << (text == "-0" ? "0" : text);
      break;
    }
    default:
      out << boost::json::serialize(v);
  }
}

void print(const boost::json::object& o) {
  write_json(std::cout, o);
  std::cout << std::endl;
}

taskq::store::StoreOptions store_options(const Args& a) {
  taskq::store::StoreOptions o;
  o.url = a.get("url");
  o.schema = a.get("schema");
  o.application_name = "taskq_bench";
  return o;
}

// ---------------------------------------------------------------------------------------------

struct DrainThread {
  std::int64_t jobs = 0;
  std::int64_t batches = 0;
  double claim_s = 0;
  double complete_s = 0;
  Clock::time_point finished{};
  std::string error;
};

int cmd_drain(const Args& a) {
  const auto options = store_options(a);
  const int threads = static_cast<int>(a.get_int("threads", 2));
  const int batch = static_cast<int>(a.get_int("batch", 1000));
  const std::string queue = a.get("queue", "default");
  const long expect = a.get_int("expect", -1);
  if (threads < 1 || batch < 1) throw std::invalid_argument("--threads and --batch must be at least 1");

  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::vector<DrainThread> results(static_cast<std::size_t>(threads));
  std::latch ready(threads);
  std::latch go(1);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      DrainThread& r = results[static_cast<std::size_t>(t)];
      bool counted = false;
      try {
        auto store = taskq::store::Store::open(options);
        const auto worker = store->register_worker({host, static_cast<int>(::getpid()), {queue}, batch, "bench"});
        ready.count_down();
        counted = true;
        go.wait();
        std::vector<taskq::store::Outcome> outcomes;
        outcomes.reserve(static_cast<std::size_t>(batch));
        for (;;) {
          auto t0 = Clock::now();
          const auto jobs = store->claim(worker, queue, batch);
          r.claim_s += seconds_since(t0);
          if (jobs.empty()) break;
          outcomes.clear();
          for (const auto& j : jobs) {
            taskq::store::Outcome o;
            o.id = j.id;
            outcomes.push_back(o);
          }
          t0 = Clock::now();
          const auto applied = store->complete(worker, outcomes);
          r.complete_s += seconds_since(t0);
          if (applied != jobs.size())
            throw std::runtime_error("complete applied " + std::to_string(applied) + " of " +
                                     std::to_string(jobs.size()) + " outcomes");
          r.jobs += static_cast<std::int64_t>(jobs.size());
          ++r.batches;
        }
        r.finished = Clock::now();
        store->unregister_worker(worker);
      } catch (const std::exception& e) {
        r.error = e.what();
        r.finished = Clock::now();
        if (!counted) ready.count_down();
      }
    });
  }
  ready.wait();
  const auto start = Clock::now();
  go.count_down();
  for (auto& th : pool) th.join();

  std::int64_t total = 0, batches = 0;
  double claim_s = 0, complete_s = 0;
  Clock::time_point end = start;
  for (const auto& r : results) {
    if (!r.error.empty()) throw std::runtime_error("drain thread failed: " + r.error);
    total += r.jobs;
    batches += r.batches;
    claim_s += r.claim_s;
    complete_s += r.complete_s;
    end = std::max(end, r.finished);
  }
  if (expect >= 0 && total != expect)
    throw std::runtime_error("drained " + std::to_string(total) + " jobs, expected " + std::to_string(expect));
  const double secs = std::chrono::duration<double>(end - start).count();
  boost::json::object o;
  o["n"] = total;
  o["threads"] = threads;
  o["batch"] = batch;
  o["seconds"] = round_to(secs, 4);
  o["drain_per_s"] = std::llround(secs > 0 ? static_cast<double>(total) / secs : 0);
  o["batches"] = batches;
  // Summed over threads: where the client waited (claim statement vs complete statement).
  o["claim_ms_per_batch"] = round_to(batches ? claim_s * 1000 / static_cast<double>(batches) : 0, 3);
  o["complete_ms_per_batch"] = round_to(batches ? complete_s * 1000 / static_cast<double>(batches) : 0, 3);
  o["claim_share"] = round_to(claim_s + complete_s > 0 ? claim_s / (claim_s + complete_s) : 0, 3);
  print(o);
  return 0;
}

// ---------------------------------------------------------------------------------------------

int cmd_enqueue(const Args& a) {
  taskq::queue::ClientOptions options;
  options.store = store_options(a);
  const std::string path = a.get("file");
  auto client = taskq::queue::Client::connect(options);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  const auto t0 = Clock::now();
  const auto r = client->enqueue_jsonl(in, path);
  const double secs = seconds_since(t0);
  boost::json::object o;
  o["n"] = r.inserted;
  o["seconds"] = round_to(secs, 4);
  o["jobs_per_s"] = std::llround(secs > 0 ? static_cast<double>(r.inserted) / secs : 0);
  print(o);
  return 0;
}

int cmd_parse(const Args& a) {
  const std::string path = a.get("file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  // The same steps as Client::enqueue_jsonl, minus the store.
  const taskq::EnqueueLimits limits;
  unsigned char buffer[16384];
  std::string line;
  std::int64_t n = 0;
  std::size_t bytes = 0;
  const auto t0 = Clock::now();
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    boost::json::monotonic_resource mr(buffer, sizeof buffer);
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(line, ec, &mr);
    if (ec) throw std::runtime_error(path + ":" + std::to_string(n + 1) + ": invalid JSON");
    const taskq::EnqueueParams p = taskq::enqueue_params_from_json(v);
    taskq::validate_enqueue(p, limits, taskq::JsonCheck::already_parsed);
    bytes += p.args.size();
    ++n;
  }
  const double secs = seconds_since(t0);
  boost::json::object o;
  o["n"] = n;
  o["seconds"] = round_to(secs, 4);
  o["lines_per_s"] = std::llround(secs > 0 ? static_cast<double>(n) / secs : 0);
  o["args_bytes"] = bytes;
  print(o);
  return 0;
}

int cmd_single(const Args& a) {
  taskq::queue::ClientOptions options;
  options.store = store_options(a);
  const long runs = a.get_int("runs", 200);
  const long warmup = a.get_int("warmup", 5);
  std::vector<double> connect_ms, insert_ms, close_ms, total_ms;
  taskq::EnqueueParams params;
  params.kind = "noop";
  params.args = "{}";
  for (long i = 0; i < warmup + runs; ++i) {
    const auto t0 = Clock::now();
    auto client = taskq::queue::Client::connect(options);
    const auto t1 = Clock::now();
    const auto r = client->enqueue(params);
    const auto t2 = Clock::now();
    client.reset();
    const auto t3 = Clock::now();
    if (r.job.id <= 0) throw std::runtime_error("enqueue returned no id");
    if (i < warmup) continue;
    auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
    connect_ms.push_back(ms(t1 - t0));
    insert_ms.push_back(ms(t2 - t1));
    close_ms.push_back(ms(t3 - t2));
    total_ms.push_back(ms(t3 - t0));
  }
  boost::json::object o;
  o["connect"] = summary_ms(connect_ms);
  o["insert"] = summary_ms(insert_ms);
  o["close"] = summary_ms(close_ms);
  o["total"] = summary_ms(total_ms);
  print(o);
  return 0;
}

// ---------------------------------------------------------------------------------------------

// One run of the command: wall milliseconds from spawn to exit. Throws when it does not exit 0.
double run_once(std::vector<std::string> command, const std::string& stdout_path) {
  std::vector<char*> argv;
  for (auto& s : command) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const auto t0 = Clock::now();
  const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot run " + command[0] + ": " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& s : command) cmd += (cmd.empty() ? "" : " ") + s;
    throw std::runtime_error("command failed (" +
                             (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                : "signal " + std::to_string(WTERMSIG(status))) +
                             "): " + cmd);
  }
  return ms;
}

int cmd_spawn(const Args& a) {
  if (a.command.empty()) throw std::invalid_argument("spawn: no command after --");
  const long runs = a.get_int("runs", 1);
  const long warmup = a.get_int("warmup", 0);
  const std::string out = a.get("stdout", "/dev/null");
  std::vector<double> ms;
  for (long i = 0; i < warmup + runs; ++i) {
    const double t = run_once(a.command, out);
    if (i >= warmup) ms.push_back(t);
  }
  boost::json::object o = summary_ms(ms);
  boost::json::array all;
  for (double t : ms) all.push_back(round_to(t, 3));
  o["times_ms"] = std::move(all);
  print(o);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: taskq_drain_bench drain|enqueue|parse|single|spawn [--key value]... (see bench/README.md)\n";
    return 2;
  }
  const std::string cmd = argv[1];
  try {
    const Args a = parse_args(argc, argv, 2);
    if (cmd == "drain") return cmd_drain(a);
    if (cmd == "enqueue") return cmd_enqueue(a);
    if (cmd == "parse") return cmd_parse(a);
    if (cmd == "single") return cmd_single(a);
    if (cmd == "spawn") return cmd_spawn(a);
    std::cerr << "taskq_drain_bench: unknown command " << cmd << '\n';
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "taskq_drain_bench " << cmd << ": " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "taskq_drain_bench " << cmd << ": " << e.what() << '\n';
    return 1;
  }
}
