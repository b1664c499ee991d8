// taskq_worker_bench: the worker's half of the benchmarks (bench/run, bench/peer.sh). Each
// subcommand prints one JSON object on stdout; progress goes to stderr.
//
//   peer   --url U [--schema S] [--n N] [--lat-n 200] [--lat-rate 50] [--concurrency 1000]
//          [--events idle|off|one|on] [--counts on|off]
//          [--delete-completed 0|1]
//       The peer contract of ../shared/bench/peers/README.md, in one process:
//       enqueue: N noop jobs through the bulk API (COPY) in one call, timed from the call to its
//         return; drain: those N jobs, clock from the worker's start to the moment every handler
//         has run and the database shows no unfinished job (polled every 5 ms once the handlers are
//         done); latency: one idle worker, a warm-up of 10 jobs and 1 s idle, then LAT_N single
//         enqueues on a fixed 1000/LAT_RATE ms schedule, one at a time, each measured from just
//         before the enqueue call to the start of an in-process handler.
//   exec   --url U [--schema S] [--n 5000] [--concurrency 32] [--program /bin/true]
//       N exec jobs running PROGRAM through an in-process worker: jobs/s from start to all done.
#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "taskq/log/log.hpp"
#include "taskq/queue/client.hpp"
#include "taskq/worker/worker.hpp"

namespace {

using Steady = std::chrono::steady_clock;

struct Args {
  std::map<std::string, std::string> options;
  [[nodiscard]] std::string get(const std::string& k, const std::string& def = "") const {
    auto it = options.find(k);
    return it == options.end() ? def : it->second;
  }
  [[nodiscard]] long long num(const std::string& k, long long def) const {
    auto it = options.find(k);
    return it == options.end() ? def : std::stoll(it->second);
  }
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0 || i + 1 >= argc) throw std::invalid_argument("bad argument " + k);
    a.options[k.substr(2)] = argv[++i];
  }
  if (a.get("url").empty()) throw std::invalid_argument("--url is required");
  return a;
}

double ms_between(Steady::time_point a, Steady::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(idx, v.size() - 1)];
}

taskq::store::StoreOptions store_options(const Args& a) {
  taskq::store::StoreOptions o;
  o.url = a.get("url");
  o.schema = a.get("schema", "taskq_bench");
  o.application_name = "taskq bench";
  return o;
}

// The schema, migrated and empty. `events` (bench/events-cost): "idle" leaves the job-event
// triggers of migration 3 as they are with no event stream open; "off" drops them (taskq before
// migration 3); "one" registers a live event listener watching one job that is not among them (a
// per-job stream open elsewhere); "on" one watching every queue, so every change is announced.
// `counts` (bench/stats): "off" drops the job-count triggers of migration 4 (taskq before it).
void fresh_schema(const taskq::store::StoreOptions& o, const std::string& events = "idle",
                  const std::string& counts = "on") {
  {
    pqxx::connection c(o.url);
    pqxx::nontransaction tx(c);
    tx.exec("DROP SCHEMA IF EXISTS " + tx.quote_name(o.schema) + " CASCADE");
  }
  auto store = taskq::store::Store::open(o);
  store->migrate();
  if (events == "on") {
    store->register_event_listener("bench", "bench", 1, taskq::store::EventWatch{{}, {}, true, 1},
                                   std::chrono::hours{1});
  } else if (events == "one") {
    store->register_event_listener("bench", "bench", 1, taskq::store::EventWatch{{1234567890}, {}, false, 1},
                                   std::chrono::hours{1});
  } else if (events == "off") {
    pqxx::connection c(o.url);
    pqxx::nontransaction tx(c);
    for (const char* t : {"jobs_inserted_events", "jobs_updated_events", "jobs_deleted_events"})
      tx.exec(std::string("DROP TRIGGER ") + t + " ON " + tx.quote_name(o.schema) + ".jobs");
  } else if (events != "idle") {
    throw std::runtime_error("--events must be idle, off, one or on");
  }
  if (counts == "off") {
    pqxx::connection c(o.url);
    pqxx::nontransaction tx(c);
    for (const char* t :
         {"jobs_inserted_counts", "jobs_updated_counts", "jobs_deleted_counts", "jobs_truncated_counts"})
      tx.exec(std::string("DROP TRIGGER ") + t + " ON " + tx.quote_name(o.schema) + ".jobs");
  } else if (counts != "on") {
    throw std::runtime_error("--counts must be on or off");
  }
}

// True when no job is available, running or scheduled (the partial indexes answer it).
bool none_unfinished(pqxx::connection& c, const std::string& schema) {
  pqxx::nontransaction tx(c);
  const std::string s = tx.quote_name(schema);
  return tx
      .exec1("SELECT NOT EXISTS (SELECT 1 FROM " + s +
             ".jobs WHERE state = 'available') AND NOT EXISTS (SELECT 1 FROM " + s +
             ".jobs WHERE state = 'running') AND NOT EXISTS (SELECT 1 FROM " + s +
             ".jobs WHERE state = 'scheduled')")[0]
      .as<bool>();
}

taskq::worker::WorkerOptions worker_options(const Args& a, int concurrency) {
  taskq::worker::WorkerOptions w;
  w.store = store_options(a);
  w.worker.queues = {{"default", concurrency}};
  w.worker.delete_completed = a.num("delete-completed", 0) != 0;
  w.version = "bench";
  return w;
}

int cmd_peer(const Args& a) {
  const auto opts = store_options(a);
  const long long n = a.num("n", 20000);
  const long long lat_n = a.num("lat-n", 200);
  const long long lat_rate = a.num("lat-rate", 50);
  const int concurrency = static_cast<int>(a.num("concurrency", 1000));
  fresh_schema(opts, a.get("events", "idle"), a.get("counts", "on"));
  taskq::queue::Client client(taskq::store::Store::open(opts));

  // 1. enqueue
  std::cerr << "peer: enqueue " << n << " noop jobs\n";
  long long i = 0;
  const auto e0 = Steady::now();
  client.enqueue_many([&](taskq::EnqueueParams& p) {
    if (i++ >= n) return false;
    p = taskq::EnqueueParams{};
    p.kind = "noop";
    return true;
  });
  const double enqueue_s = ms_between(e0, Steady::now()) / 1000.0;

  // 2. drain
  std::cerr << "peer: drain with " << concurrency << " slots, delete_completed=" << (a.num("delete-completed", 0) != 0)
            << "\n";
  pqxx::connection poll(opts.url);
  double drain_s = 0;
  {
    taskq::worker::Worker w(worker_options(a, concurrency));
    const auto d0 = Steady::now();
    w.start();
    while (w.stats().completed < n) std::this_thread::sleep_for(std::chrono::microseconds{500});
    while (!none_unfinished(poll, opts.schema)) std::this_thread::sleep_for(std::chrono::milliseconds{5});
    drain_s = ms_between(d0, Steady::now()) / 1000.0;
    w.stop(std::chrono::seconds{5});
  }

  // 3. latency
  std::cerr << "peer: latency, " << lat_n << " jobs at " << lat_rate << "/s\n";
  std::mutex mu;
  std::map<long long, Steady::time_point> started;
  std::vector<double> lat;
  double lat_enqueue_p50 = 0;
  {
    taskq::worker::Worker w(worker_options(a, concurrency));
    w.register_handler("lat", [&](taskq::worker::JobContext& ctx) {
      const auto now = Steady::now();
      std::lock_guard lock(mu);
      started[ctx.job.id] = now;
      return taskq::worker::HandlerResult{};
    });
    w.start();
    std::vector<double> enqueue_ms;
    auto one = [&]() -> std::pair<long long, Steady::time_point> {
      taskq::EnqueueParams p;
      p.kind = "lat";
      const auto t = Steady::now();
      const auto id = client.enqueue(p).job.id;
      enqueue_ms.push_back(ms_between(t, Steady::now()));
      return {id, t};
    };
    auto wait_started = [&](long long id) {
      const auto until = Steady::now() + std::chrono::seconds{10};
      for (;;) {
        {
          std::lock_guard lock(mu);
          if (auto it = started.find(id); it != started.end()) return it->second;
        }
        if (Steady::now() > until) throw std::runtime_error("latency job " + std::to_string(id) + " never started");
        std::this_thread::sleep_for(std::chrono::microseconds{100});
      }
    };
    for (int k = 0; k < 10; ++k) wait_started(one().first);
    enqueue_ms.clear();
    std::this_thread::sleep_for(std::chrono::seconds{1});
    const auto interval = std::chrono::microseconds{1000000 / std::max(1LL, lat_rate)};
    const auto t0 = Steady::now();
    for (long long k = 0; k < lat_n; ++k) {
      std::this_thread::sleep_until(t0 + k * interval);
      const auto [id, at] = one();
      lat.push_back(ms_between(at, wait_started(id)));
    }
    w.stop(std::chrono::seconds{5});
    lat_enqueue_p50 = percentile(enqueue_ms, 50);
  }

  const bool deleting = a.num("delete-completed", 0) != 0;
  boost::json::object o{
      {"peer", deleting ? "taskq-delete" : "taskq"},
      {"version", "0.1.0"},
      {"n", n},
      {"enqueue_per_s", std::llround(static_cast<double>(n) / enqueue_s)},
      {"drain_per_s", std::llround(static_cast<double>(n) / drain_s)},
      {"drain_ms", std::llround(drain_s * 1000)},
      {"lat_p50_ms", percentile(lat, 50)},
      {"lat_p95_ms", percentile(lat, 95)},
      {"lat_p99_ms", percentile(lat, 99)},
      {"lat_max_ms", percentile(lat, 100)},
      {"lat_enqueue_call_p50_ms", lat_enqueue_p50},
      {"settings", "in-process taskq::worker::Worker, queue default = " + std::to_string(concurrency) +
                       " slots, delete_completed=" + (deleting ? "true" : "false") +
                       "; enqueue = Client::enqueue_many (COPY); latency handler in-process"}};
  std::cout << boost::json::serialize(o) << std::endl;
  return 0;
}

int cmd_exec(const Args& a) {
  const auto opts = store_options(a);
  const long long n = a.num("n", 5000);
  const int concurrency = static_cast<int>(a.num("concurrency", 32));
  fresh_schema(opts);
  taskq::queue::Client client(taskq::store::Store::open(opts));
  long long i = 0;
  client.enqueue_many([&](taskq::EnqueueParams& p) {
    if (i++ >= n) return false;
    p = taskq::EnqueueParams{};
    p.kind = "exec";
    return true;
  });
  auto w_opts = worker_options(a, concurrency);
  taskq::config::KindConfig k;
  k.name = "exec";
  k.exec = {a.get("program", "/bin/true")};
  w_opts.kinds["exec"] = k;
  taskq::worker::Worker w(w_opts);
  const auto t0 = Steady::now();
  w.start();
  while (w.stats().completed + w.stats().failed + w.stats().retried < n)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  const double s = ms_between(t0, Steady::now()) / 1000.0;
  const auto st = w.stats();
  w.stop(std::chrono::seconds{5});
  boost::json::object o{{"n", n},
                        {"concurrency", concurrency},
                        {"program", a.get("program", "/bin/true")},
                        {"seconds", s},
                        {"jobs_per_s", std::llround(static_cast<double>(n) / s)},
                        {"completed", st.completed},
                        {"failed", st.failed + st.retried}};
  std::cout << boost::json::serialize(o) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: taskq_worker_bench peer|exec --url URL [--key value]... (see bench/README.md)\n";
    return 2;
  }
  const std::string cmd = argv[1];
  try {
    const Args a = parse_args(argc, argv);
    taskq::log::setup_logging({"warn", "text"}, "taskq_worker_bench");  // stderr; stdout is the result
    if (cmd == "peer") return cmd_peer(a);
    if (cmd == "exec") return cmd_exec(a);
    std::cerr << "taskq_worker_bench: unknown command " << cmd << '\n';
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "taskq_worker_bench " << cmd << ": " << e.what() << '\n';
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "taskq_worker_bench " << cmd << ": " << e.what() << '\n';
    return 1;
  }
}
