#pragma once
// Prometheus metrics of a taskq daemon: counters, gauges and histograms in labelled families,
// rendered in the text exposition format (version 0.0.4). Every daemon names its series
// `taskq_<area>_<what>` with base units (seconds, bytes) and `_total` on counters.
//
// Recording is cheap and lock-free: a family hands out its children (one per label set) once,
// under its lock, and callers keep the reference; a child is an atomic. Children are never
// removed, so references stay valid for the registry's life.
//
// Invariants: label values are bounded. Callers map values they do not know to "other" (a
// worker's kinds come from its config), and a family refuses to grow past max_children: further
// label sets all land in one child whose every label is "other", so a bug or a hostile input can
// cost at most that many series. Names and label names are checked at registration (a bad one is
// a programmer error: Error(internal)).
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace taskq::metrics {

/// Label values, in the order of the family's label names.
using Labels = std::vector<std::string>;

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
  [[nodiscard]] double value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

/// Observations counted into buckets with upper bounds (le), plus their count and sum.
class Histogram {
 public:
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);
  void observe(double v) noexcept;
  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
  };
  [[nodiscard]] Snapshot snapshot() const;
  [[nodiscard]] const std::vector<double>& bounds() const { return *bounds_; }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket (not cumulative), last: above every bound
  std::atomic<double> sum_{0};
};

/// Bucket bounds in seconds for durations from a millisecond to an hour.
const std::vector<double>& duration_buckets();
/// Bucket bounds in seconds for database statements: 100 µs to 10 s.
const std::vector<double>& statement_buckets();

class Registry;

/// What families share: the name, help and type, the label names, the children's renderer.
class FamilyBase {
 public:
  static constexpr std::size_t default_max_children = 2000;
  FamilyBase(std::string name, std::string help, std::string type, std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;
  void render(std::string& out) const;
  [[nodiscard]] const std::string& name() const { return name_; }

 protected:
  // Appends the samples of one child; `labels` is the rendered label pairs without braces.
  virtual void render_child(std::string& out, const std::string& labels, const void* child) const = 0;
  // The key under which `values` are stored: themselves, or all "other" past max_children.
  [[nodiscard]] Labels key_for(const Labels& values, std::size_t children) const;
  [[nodiscard]] std::string label_text(const Labels& values) const;

  std::string name_, help_, type_;
  std::vector<std::string> label_names_;
  std::size_t max_children_ = default_max_children;
  mutable std::mutex mu_;
  std::map<Labels, std::shared_ptr<void>> children_;  // guarded by mu_
  friend class Registry;
};

template <class M>
class Family : public FamilyBase {
 public:
  Family(std::string name, std::string help, std::string type, std::vector<std::string> label_names,
         std::function<std::shared_ptr<M>()> make)
      : FamilyBase(std::move(name), std::move(help), std::move(type), std::move(label_names)), make_(std::move(make)) {}

  /// The child for these label values (created on first use). Keep the reference: it lives as
  /// long as the registry. Throws Error(internal) when the number of values is wrong.
  M& with(const Labels& values) {
    std::lock_guard lk(mu_);
    auto key = key_for(values, children_.size());
    auto it = children_.find(key);
    if (it == children_.end()) it = children_.emplace(std::move(key), make_()).first;
    return *static_cast<M*>(it->second.get());
  }

 private:
  void render_child(std::string& out, const std::string& labels, const void* child) const override;
  std::function<std::shared_ptr<M>()> make_;
};

class Registry {
 public:
  Family<Counter>& counter(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
  Family<Gauge>& gauge(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
  /// A counter whose value is read from elsewhere at collect time (CPU seconds): set, not added.
  Family<Gauge>& counter_read(const std::string& name, const std::string& help, std::vector<std::string> labels = {});
  Family<Histogram>& histogram(const std::string& name, const std::string& help, std::vector<std::string> labels,
                               const std::vector<double>& bounds);
  /// Runs before each render, in the order added: sets gauges read from elsewhere.
  void on_collect(std::function<void()> collect);
  /// Every family in the order registered, after the collect functions ran. Thread-safe.
  [[nodiscard]] std::string render() const;
  /// Families registered from now on hold at most `n` label sets each (tests use a small n).
  void set_max_children(std::size_t n);

 private:
  void add(std::unique_ptr<FamilyBase> family);
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_;
  std::vector<std::function<void()>> collect_;
  std::size_t max_children_ = FamilyBase::default_max_children;
};

/// A label value escaped for the text format: backslash, double quote and newline.
std::string escape_label(const std::string& value);
/// A sample value: integers without a fraction, others with enough digits to round-trip; NaN
/// and infinities as the format spells them.
std::string format_value(double v);

}  // namespace taskq::metrics
