#include "verify/verify_report.h"

#include <algorithm>
#include <cmath>

namespace cdc::verify {

using json = nlohmann::json;

namespace {

json Keys(const std::vector<PkValue>& keys) {
  json out = json::array();
  for (const auto& k : keys) out.push_back(KeyJson(k));
  return out;
}

// Every kind's samples together, in key order, at most kSampleKeys.
json SampleKeys(const Differences& d) {
  std::vector<PkValue> all;
  for (const auto* list : {&d.missing_keys, &d.extra_keys, &d.different_keys}) all.insert(all.end(), list->begin(), list->end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  if (all.size() > kSampleKeys) all.resize(kSampleKeys);
  return Keys(all);
}

void PutDifferences(const Differences& d, json* out) {
  (*out)["missing"] = d.missing;
  (*out)["extra"] = d.extra;
  (*out)["different"] = d.different;
  (*out)["in_flux"] = d.in_flux;
  (*out)["sample_keys"] = SampleKeys(d);
  (*out)["samples"] = {{"missing", Keys(d.missing_keys)}, {"extra", Keys(d.extra_keys)},
                       {"different", Keys(d.different_keys)}};
  if (!d.different_fields.empty()) (*out)["different_fields"] = d.different_fields;
}

}  // namespace

void Differences::Add(int kind, const PkValue& key, const std::string& field) {
  std::vector<PkValue>* samples = nullptr;
  switch (kind) {
    case kMissing:
      ++missing;
      samples = &missing_keys;
      break;
    case kExtra:
      ++extra;
      samples = &extra_keys;
      break;
    default:
      ++different;
      samples = &different_keys;
      if (!field.empty()) ++different_fields[field];
      break;
  }
  if (samples->size() < kSampleKeys) samples->push_back(key);
}

bool CollectionReport::Equal() const {
  if (!error.empty() || !schema_differences.empty() || !target_exists) return false;
  if (source_duplicates != target_duplicates) return false;
  if (repair) return repair->error.empty() && repair->after.total() == 0 && !repair->partial;
  return diff.total() == 0 && unchecked == 0;
}

bool VerifyReport::Equal() const {
  return std::all_of(collections.begin(), collections.end(), [](const CollectionReport& c) { return c.Equal(); });
}

void AddWarning(CollectionReport* report, const std::string& warning) {
  if (warning.empty()) return;
  if (std::find(report->warnings.begin(), report->warnings.end(), warning) != report->warnings.end()) return;
  report->warnings.push_back(warning);
}

json KeyJson(const PkValue& key) {
  if (const auto* i = std::get_if<int64_t>(&key)) return *i;
  return std::get<std::string>(key);
}

json ToJson(const CollectionReport& r) {
  json out = {{"db", r.db},
              {"name", r.name},
              {"target_db", r.target_db},
              {"target_name", r.target_name},
              {"equal", r.Equal()},
              {"level", r.level},
              {"source_rows", r.source_rows},
              {"target_rows", r.target_rows}};
  PutDifferences(r.diff, &out);
  out["duplicates"] = {{"source", r.source_duplicates}, {"target", r.target_duplicates}};
  out["rows_compared"] = r.rows_compared;
  out["generations"] = r.generations;
  out["seconds"] = std::round(r.seconds * 1000) / 1000;
  if (r.partitions > 0) out["partitions"] = r.partitions;
  if (!r.target_exists) out["target_exists"] = false;
  if (r.unchecked > 0) out["unchecked"] = r.unchecked;
  if (!r.schema_differences.empty()) out["schema_differences"] = r.schema_differences;
  if (!r.warnings.empty()) out["warnings"] = r.warnings;
  if (!r.error.empty()) out["error"] = r.error;
  if (r.repair) {
    json repair = {{"copy_keys", r.repair->copy_keys}, {"delete_keys", r.repair->delete_keys}};
    if (r.repair->partial) repair["partial"] = true;
    if (!r.repair->error.empty()) repair["error"] = r.repair->error;
    json after = json::object();
    PutDifferences(r.repair->after, &after);
    repair["after"] = std::move(after);
    out["repair"] = std::move(repair);
  }
  return out;
}

json ToJson(const VerifyReport& r) {
  json collections = json::array();
  for (const auto& c : r.collections) collections.push_back(ToJson(c));
  json out = {{"equal", r.Equal()}, {"level", r.level}, {"repair", r.repair}, {"collections", std::move(collections)}};
  if (!r.warnings.empty()) out["warnings"] = r.warnings;
  return out;
}

}  // namespace cdc::verify
