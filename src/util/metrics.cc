#include "util/metrics.h"

#include <cmath>
#include <sstream>

namespace cdc {

namespace {
std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// HELP text escapes only backslash and newline (label values also escape quotes).
std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}
}  // namespace

std::string Metrics::RenderLabels(const Labels& labels, const std::string& extra) {
  if (labels.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"" + Escape(labels[i].second) + "\"";
  }
  if (!extra.empty()) out += (labels.empty() ? "" : ",") + extra;
  return out + "}";
}

void Metrics::Describe(const std::string& name, Type type, const std::string& help, std::vector<double> buckets) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = families_[name];
  f.type = type;
  f.help = help;
  f.buckets = std::move(buckets);
}

Metrics::Family& Metrics::FamilyLocked(const std::string& name, Type type) {
  auto it = families_.find(name);
  if (it != families_.end()) return it->second;
  Family& f = families_[name];
  f.type = type;
  return f;
}

void Metrics::Add(const std::string& name, const Labels& labels, double delta) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = FamilyLocked(name, Type::kCounter).series[RenderLabels(labels)];
  s.labels = labels;
  s.value += delta;
}

void Metrics::Set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& s = FamilyLocked(name, Type::kGauge).series[RenderLabels(labels)];
  s.labels = labels;
  s.value = value;
}

void Metrics::Observe(const std::string& name, const Labels& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& f = FamilyLocked(name, Type::kHistogram);
  Series& s = f.series[RenderLabels(labels)];
  s.labels = labels;
  if (s.bucket_counts.size() != f.buckets.size()) s.bucket_counts.assign(f.buckets.size(), 0);
  for (size_t i = 0; i < f.buckets.size(); ++i) {
    if (value <= f.buckets[i]) s.bucket_counts[i] += 1;
  }
  s.sum += value;
  s.count += 1;
}

void Metrics::Erase(const std::string& name, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) it->second.series.erase(RenderLabels(labels));
}

void Metrics::Remove(const std::string& name, const std::string& label, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  auto& series = it->second.series;
  for (auto s = series.begin(); s != series.end();) {
    bool match = false;
    for (const auto& [k, v] : s->second.labels) match = match || (k == label && v == value);
    s = match ? series.erase(s) : std::next(s);
  }
}

std::string Metrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter" : f.type == Type::kGauge ? "gauge" : "histogram";
    if (!f.help.empty()) out << "# HELP " << name << " " << EscapeHelp(f.help) << "\n";
    out << "# TYPE " << name << " " << type << "\n";
    for (const auto& [key, s] : f.series) {
      if (f.type != Type::kHistogram) {
        out << name << key << " " << Number(s.value) << "\n";
        continue;
      }
      for (size_t i = 0; i < f.buckets.size(); ++i) {
        double count = i < s.bucket_counts.size() ? s.bucket_counts[i] : 0;
        out << name << "_bucket" << RenderLabels(s.labels, "le=\"" + Number(f.buckets[i]) + "\"") << " "
            << Number(count) << "\n";
      }
      out << name << "_bucket" << RenderLabels(s.labels, "le=\"+Inf\"") << " " << s.count << "\n";
      out << name << "_sum" << key << " " << Number(s.sum) << "\n";
      out << name << "_count" << key << " " << s.count << "\n";
    }
  }
  return out.str();
}

}  // namespace cdc
