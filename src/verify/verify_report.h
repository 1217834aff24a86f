// The result of a verify run, per collection and overall, and its JSON form (what `verify`
// answers as data.verify, `get` shows as "verify" and `milvus-cdc verify` prints). Plain data.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "target/collection_reader.h"

namespace cdc::verify {

using target::PkValue;

// Up to this many keys are listed per sample.
constexpr size_t kSampleKeys = 20;

// Differences counted by kind, with samples (keys in the order found).
struct Differences {
  int64_t missing = 0;    // on the source, not on the target
  int64_t extra = 0;      // on the target, not on the source
  int64_t different = 0;  // on both, with different content (rows level)
  int64_t in_flux = 0;    // kept changing on the source through every re-check: no verdict
  std::vector<PkValue> missing_keys, extra_keys, different_keys;  // samples, up to kSampleKeys each
  std::map<std::string, int64_t> different_fields;  // first differing field -> rows

  int64_t total() const { return missing + extra + different; }
  // Counts one difference and samples its key.
  void Add(int kind, const PkValue& key, const std::string& field = "");
};

// Kinds for Differences::Add.
enum DiffKind : int { kMissing = 0, kExtra = 1, kDifferent = 2 };

// What `repair: true` did for one collection: the keys handed to the repair path, and the
// differences found when they were verified again.
struct RepairResult {
  int64_t copy_keys = 0;    // missing and different keys (re)copied from the source
  int64_t delete_keys = 0;  // extra keys deleted from the target
  bool partial = false;     // more differences than were kept for re-checking: only those were repaired
  std::string error;        // the repair path's answer when it failed
  Differences after;
};

struct CollectionReport {
  std::string db, name;                // source
  std::string target_db, target_name;  // target, after name_mapping
  std::string level;
  bool target_exists = true;
  int64_t source_rows = 0;  // rows read on each side (count(*) at the count level)
  int64_t target_rows = 0;
  int64_t rows_compared = 0;        // keys merged (both sides' rows, each key once)
  int64_t source_duplicates = 0;    // count(*) minus distinct keys, where a range showed copies
  int64_t target_duplicates = 0;
  int partitions = 0;               // compared one by one (0: the collection as a whole)
  int generations = 0;              // re-check rounds run
  int64_t unchecked = 0;            // differences beyond the re-check limit: counted as found
  Differences diff;
  std::vector<std::string> schema_differences;
  std::vector<std::string> warnings;
  std::string error;  // why it could not be compared (then equal is false)
  std::optional<RepairResult> repair;
  double seconds = 0;

  // No persistent difference, no duplicates on one side only, no schema difference, no error
  // (after the repair when one ran).
  bool Equal() const;
};

struct VerifyReport {
  std::string level;
  bool repair = false;
  std::vector<CollectionReport> collections;
  std::vector<std::string> warnings;
  bool Equal() const;
};

// Adds `warning` to the report unless it is empty or already there.
void AddWarning(CollectionReport* report, const std::string& warning);

// A key as JSON: a number for INT64 keys, a string for VarChar keys.
nlohmann::json KeyJson(const PkValue& key);
nlohmann::json ToJson(const CollectionReport& report);
// {"equal", "level", "repair", "collections": [...], "warnings"?}.
nlohmann::json ToJson(const VerifyReport& report);

}  // namespace cdc::verify
