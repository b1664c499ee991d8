#pragma once
// Live job events for the event streams (Server-Sent Events) of taskq-apid.
//
// One hub per apid: one thread, one database connection that LISTENs on "<schema>_events" (the
// job events of migration 3) and is shared by every stream. While streams are open the hub keeps
// a row in event_listeners, which is what makes the database announce job changes at all.
//
// Per-job streams (GET /v1/jobs/{id}/events) get the job as GET /v1/jobs/{id} shows it: first its
// current state, then after each change of state or attempt (read right after the change, so two
// changes within a read's time may show as one), progress events as they come, and `end` after a
// terminal state. Because a notification can be missed (the listener row is new, the listening
// connection was lost), every per-job stream's job is also re-read once a second.
//
// Queue streams (GET /v1/events?queue=Q) get every change as it is announced, without a read:
// {id, queue, kind, state, attempt} or the progress; best effort across a lost connection.
//
// Frames are built once and shared (std::shared_ptr) by every stream they go to.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "response.hpp"
#include "taskq/core/job.hpp"
#include "taskq/queue/client.hpp"

namespace taskq::api {

using Frame = std::shared_ptr<const std::string>;

/// One SSE frame: "event: NAME\ndata: DATA\n\n" (DATA holds no newline: compact JSON).
Frame sse_frame(std::string_view event, std::string_view data);

/// What a stream asks for: one job, or the changes of some queues (none listed: every queue).
struct StreamRequest {
  std::optional<JobId> job;
  std::vector<std::string> queues;
};

/// The hub's side of one HTTP stream, implemented by the HTTP session. The hub calls these from
/// its own thread; implementations hand the work to their connection's strand.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  /// The stream is on: send the response headers, then `first` (if any). `end`: the stream ends
  /// after them.
  virtual void open(std::vector<Frame> first, bool end) = 0;
  /// No stream: answer with `response` instead (404 for an unknown job, 503 without a database).
  virtual void refuse(Response response) = 0;
  /// More frames; `end`: the stream ends after them.
  virtual void send(std::vector<Frame> frames, bool end) = 0;
  /// The client went away or the stream ended; the hub forgets the sink.
  [[nodiscard]] virtual bool gone() const = 0;
};

struct EventHubOptions {
  store::StoreOptions store;
  std::string listener_name;  // unique per apid process: "<host> <pid> <random>"
  std::string host;
  int pid = 0;
  Duration keep_alive = std::chrono::seconds{15};  // an SSE comment to every stream this often
  Duration job_poll = std::chrono::seconds{1};     // per-job streams' jobs are re-read this often
  Duration listener_ttl = std::chrono::seconds{30};
  Duration linger = std::chrono::seconds{30};  // the listener row outlives the last stream by this
};

class EventHub {
 public:
  explicit EventHub(EventHubOptions options);
  ~EventHub();
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  void start();
  /// Hands a new stream to the hub; it answers through the sink.
  void subscribe(std::shared_ptr<StreamSink> sink, StreamRequest request);
  /// Wakes the hub to forget sinks that are gone.
  void forget_gone();
  /// Ends every stream with `event: end` {"reason": "shutdown"}, removes the listener row and
  /// stops the thread. Idempotent.
  void stop();

  /// Streams open now (for /metrics).
  [[nodiscard]] int streams() const { return streams_.load(); }
  /// Events delivered to streams so far (one per stream reached).
  [[nodiscard]] std::int64_t delivered() const { return delivered_.load(); }

 private:
  struct Inbox;  // what other threads hand the hub's thread: new streams, wake-ups, the stop
  class Loop;    // the hub's thread: its streams, its connection and the steps of its loop

  EventHubOptions options_;
  std::unique_ptr<Inbox> inbox_;
  std::jthread thread_;  // last: joined before the inbox and options go
  std::atomic<int> streams_{0};
  std::atomic<std::int64_t> delivered_{0};
};

}  // namespace taskq::api
