#include "taskq/metrics/registry.hpp"

#include <cmath>
#include <cstdio>

#include "taskq/core/error.hpp"

namespace taskq::metrics {

namespace {

bool valid_name(const std::string& n, bool label) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return !(label && n.rfind("__", 0) == 0);
}

void append_sample(std::string& out, const std::string& name, const std::string& labels, const std::string& value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

std::string escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\' || c == '"')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// --- Histogram ----------------------------------------------------------------------------------

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_->size() + 1]) {
  for (std::size_t i = 0; i <= bounds_->size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) noexcept {
  const auto& b = *bounds_;
  std::size_t i = 0;
  while (i < b.size() && v > b[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.resize(bounds_->size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_->size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& duration_buckets() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  1,
                                        2.5,   5,      10,    30,   60,    120,  300, 600,  1800, 3600};
  return b;
}

const std::vector<double>& statement_buckets() {
  static const std::vector<double> b = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return b;
}

// --- Families -----------------------------------------------------------------------------------

FamilyBase::FamilyBase(std::string name, std::string help, std::string type, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), type_(std::move(type)), label_names_(std::move(label_names)) {
  if (!valid_name(name_, false)) throw Error(Errc::internal, "metrics: '" + name_ + "' is not a metric name");
  for (const auto& l : label_names_)
    if (!valid_name(l, true) || l == "le")
      throw Error(Errc::internal, "metrics: " + name_ + ": '" + l + "' is not a label name");
}

Labels FamilyBase::key_for(const Labels& values, std::size_t children) const {
  if (values.size() != label_names_.size())
    throw Error(Errc::internal, "metrics: " + name_ + " takes " + std::to_string(label_names_.size()) +
                                    " label value(s), got " + std::to_string(values.size()));
  if (children < max_children_ || children_.count(values)) return values;
  return Labels(values.size(), "other");
}

std::string FamilyBase::label_text(const Labels& values) const {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += label_names_[i];
    out += "=\"";
    out += escape_label(values[i]);
    out += '"';
  }
  return out;
}

void FamilyBase::render(std::string& out) const {
  out += "# HELP " + name_ + ' ' + help_ + "\n# TYPE " + name_ + ' ' + type_ + '\n';
  std::lock_guard lk(mu_);
  for (const auto& [values, child] : children_) render_child(out, label_text(values), child.get());
}

template <>
void Family<Counter>::render_child(std::string& out, const std::string& labels, const void* child) const {
  append_sample(out, name_, labels, std::to_string(static_cast<const Counter*>(child)->value()));
}

template <>
void Family<Gauge>::render_child(std::string& out, const std::string& labels, const void* child) const {
  append_sample(out, name_, labels, format_value(static_cast<const Gauge*>(child)->value()));
}

template <>
void Family<Histogram>::render_child(std::string& out, const std::string& labels, const void* child) const {
  const auto& h = *static_cast<const Histogram*>(child);
  const auto s = h.snapshot();
  const std::string sep = labels.empty() ? "" : ",";
  for (std::size_t i = 0; i < h.bounds().size(); ++i)
    append_sample(out, name_ + "_bucket", labels + sep + "le=\"" + format_value(h.bounds()[i]) + '"',
                  std::to_string(s.cumulative[i]));
  append_sample(out, name_ + "_bucket", labels + sep + "le=\"+Inf\"", std::to_string(s.cumulative.back()));
  append_sample(out, name_ + "_sum", labels, format_value(s.sum));
  append_sample(out, name_ + "_count", labels, std::to_string(s.cumulative.back()));
}

// --- Registry -----------------------------------------------------------------------------------

void Registry::add(std::unique_ptr<FamilyBase> family) {
  std::lock_guard lk(mu_);
  for (const auto& f : families_)
    if (f->name() == family->name()) throw Error(Errc::internal, "metrics: " + family->name() + " registered twice");
  family->max_children_ = max_children_;
  families_.push_back(std::move(family));
}

Family<Counter>& Registry::counter(const std::string& name, const std::string& help, std::vector<std::string> labels) {
  auto f = std::make_unique<Family<Counter>>(name, help, "counter", std::move(labels),
                                             [] { return std::make_shared<Counter>(); });
  auto& ref = *f;
  add(std::move(f));
  return ref;
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help, std::vector<std::string> labels) {
  auto f =
      std::make_unique<Family<Gauge>>(name, help, "gauge", std::move(labels), [] { return std::make_shared<Gauge>(); });
  auto& ref = *f;
  add(std::move(f));
  return ref;
}

Family<Gauge>& Registry::counter_read(const std::string& name, const std::string& help,
                                      std::vector<std::string> labels) {
  auto f = std::make_unique<Family<Gauge>>(name, help, "counter", std::move(labels),
                                           [] { return std::make_shared<Gauge>(); });
  auto& ref = *f;
  add(std::move(f));
  return ref;
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels, const std::vector<double>& bounds) {
  for (std::size_t i = 1; i < bounds.size(); ++i)
    if (!(bounds[i - 1] < bounds[i])) throw Error(Errc::internal, "metrics: " + name + ": bounds must increase");
  auto shared = std::make_shared<const std::vector<double>>(bounds);
  auto f = std::make_unique<Family<Histogram>>(name, help, "histogram", std::move(labels),
                                               [shared] { return std::make_shared<Histogram>(shared); });
  auto& ref = *f;
  add(std::move(f));
  return ref;
}

void Registry::on_collect(std::function<void()> collect) {
  std::lock_guard lk(mu_);
  collect_.push_back(std::move(collect));
}

void Registry::set_max_children(std::size_t n) {
  std::lock_guard lk(mu_);
  max_children_ = n;
}

std::string Registry::render() const {
  std::lock_guard lk(mu_);
  for (const auto& c : collect_) c();
  std::string out;
  out.reserve(16384);
  for (const auto& f : families_) f->render(out);
  return out;
}

}  // namespace taskq::metrics
