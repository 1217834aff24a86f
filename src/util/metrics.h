// Metrics: a small Prometheus registry (counters, gauges, histograms with labels)
// rendered in the text exposition format. Thread-safe; one mutex.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace cdc {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // Declares a family; undeclared names are declared on first use with empty help.
  void Describe(const std::string& name, Type type, const std::string& help,
                std::vector<double> buckets = {});
  void Add(const std::string& name, const Labels& labels, double delta = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  void Observe(const std::string& name, const Labels& labels, double value);
  // Removes the one series with exactly these labels.
  void Erase(const std::string& name, const Labels& labels);
  // Removes every series of a family whose labels include `label`=`value`.
  void Remove(const std::string& name, const std::string& label, const std::string& value);

  std::string Render() const;

 private:
  struct Series {
    Labels labels;
    double value = 0;
    std::vector<double> bucket_counts;  // histograms: cumulative per bucket
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    Type type = Type::kGauge;
    std::string help;
    std::vector<double> buckets;
    std::map<std::string, Series> series;  // key: rendered labels
  };

  Family& FamilyLocked(const std::string& name, Type type);
  static std::string RenderLabels(const Labels& labels, const std::string& extra = "");

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace cdc
