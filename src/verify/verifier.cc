#include "verify/verifier.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "pipeline/name_mapper.h"
#include "verify/key_compare.h"

namespace cdc::verify {

namespace schemapb = milvus::proto::schema;
using Clock = std::chrono::steady_clock;

namespace {

std::string TypeParam(const schemapb::FieldSchema& f, const std::string& key) {
  for (const auto& kv : f.type_params()) {
    if (kv.key() == key) return kv.value();
  }
  return "";
}

std::string TypeName(int type) {
  const std::string& name = schemapb::DataType_Name(static_cast<schemapb::DataType>(type));
  return name.empty() ? std::to_string(type) : name;
}

// Rows per `rows`-level page to start with, from the schema (the real size adapts it).
int64_t FirstRowLimit(const schemapb::CollectionSchema& schema, size_t budget) {
  size_t bytes = 64;
  for (const auto& f : schema.fields()) {
    const std::string dim = TypeParam(f, "dim");
    const size_t d = dim.empty() ? 0 : static_cast<size_t>(std::strtoull(dim.c_str(), nullptr, 10));
    switch (f.data_type()) {
      case schemapb::FloatVector: bytes += d * 4; break;
      case schemapb::BinaryVector: bytes += d / 8; break;
      case schemapb::Float16Vector:
      case schemapb::BFloat16Vector: bytes += d * 2; break;
      case schemapb::VarChar:
      case schemapb::String:
      case schemapb::JSON:
      case schemapb::Array: bytes += 256; break;
      default: bytes += 8; break;
    }
  }
  if (schema.enable_dynamic_field()) bytes += 256;
  return std::clamp<int64_t>(static_cast<int64_t>(budget / bytes), 16, target::CollectionReader::kMaxPageRows);
}

// Physical milliseconds of a hybrid timestamp.
int64_t PhysicalMs(uint64_t ts) { return static_cast<int64_t>(ts >> 18); }

}  // namespace

std::vector<std::string> SchemaDifferences(const schemapb::CollectionSchema& source,
                                           const schemapb::CollectionSchema& target) {
  std::vector<std::string> out;
  std::map<std::string, const schemapb::FieldSchema*> on_target;
  for (const auto& f : target.fields()) on_target[f.name()] = &f;
  std::set<std::string> seen;
  for (const auto& s : source.fields()) {
    seen.insert(s.name());
    auto it = on_target.find(s.name());
    if (it == on_target.end()) {
      out.push_back("field '" + s.name() + "' is missing on the target");
      continue;
    }
    const auto& t = *it->second;
    auto differ = [&](const std::string& what, const std::string& a, const std::string& b) {
      if (a != b) out.push_back("field '" + s.name() + "': " + what + " " + a + " on the source, " + b + " on the target");
    };
    differ("type", TypeName(s.data_type()), TypeName(t.data_type()));
    if (s.data_type() == schemapb::Array) differ("element type", TypeName(s.element_type()), TypeName(t.element_type()));
    differ("primary key", s.is_primary_key() ? "yes" : "no", t.is_primary_key() ? "yes" : "no");
    differ("partition key", s.is_partition_key() ? "yes" : "no", t.is_partition_key() ? "yes" : "no");
    for (const char* key : {"dim", "max_length", "max_capacity"}) differ(key, TypeParam(s, key), TypeParam(t, key));
  }
  for (const auto& t : target.fields()) {
    if (!seen.count(t.name())) out.push_back("field '" + t.name() + "' exists only on the target");
  }
  if (source.enable_dynamic_field() != target.enable_dynamic_field()) {
    out.push_back(std::string("the dynamic field is ") + (source.enable_dynamic_field() ? "on" : "off") +
                  " on the source, " + (target.enable_dynamic_field() ? "on" : "off") + " on the target");
  }
  return out;
}

std::string WaitApplied(const AppliedTsFn& applied_ts, uint64_t ts, std::chrono::milliseconds wait,
                        std::chrono::milliseconds stall, const std::function<bool()>& cancelled) {
  const auto started = Clock::now();
  const auto deadline = started + wait;
  auto moved = started;  // when the applied position last changed
  uint64_t applied = 0;
  std::string error;
  bool stalled = false;
  for (bool first = true;; first = false) {
    auto got = applied_ts();
    if (got.ok()) {
      if (!first && *got != applied) moved = Clock::now();
      applied = *got;
      error.clear();
      if (applied >= ts) return "";
    } else {
      error = got.status().message();
    }
    const auto now = Clock::now();
    stalled = now - moved >= stall;
    if (now >= deadline || stalled || (cancelled && cancelled())) break;
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(100), deadline - now));
  }
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count();
  if (!error.empty()) {
    return "cannot tell how far the task applied the source (" + error + "); differences may be changes in flight";
  }
  const std::string waited = "after waiting " + std::to_string(secs) + " s";
  if (applied == 0) {
    return "the task had applied nothing yet " + waited + "; differences may be changes it has not applied";
  }
  return std::string(stalled ? "the task did not advance" : "the task did not catch up") + " " + waited +
         " (it had applied the source up to " + std::to_string(PhysicalMs(ts) - PhysicalMs(applied)) +
         " ms before the re-check's time); differences may be changes it has not applied yet";
}

Verifier::Verifier(VerifySide* source, VerifySide* target, VerifierOptions options)
    : source_(source), target_(target), options_(std::move(options)) {}

StatusOr<std::vector<CollectionRef>> Verifier::Resolve(
    const TaskSpec& spec, const std::vector<std::pair<std::string, std::string>>& requested) {
  const pipeline::TaskScope scope(spec);
  std::vector<CollectionRef> out;
  auto add = [&](const std::string& db, const std::string& name) {
    auto [tdb, tname] = scope.Map(db, name);
    out.push_back(CollectionRef{db, name, tdb, tname});
  };
  if (!requested.empty()) {
    for (const auto& [db_in, name] : requested) {
      const std::string db = db_in.empty() ? "default" : db_in;
      if (!spec.CollectionInScope(db, name)) {
        return InvalidArgument("the collection " + db + "." + name + " is not in the scope of the task, task_id: " +
                               spec.task_id);
      }
      add(db, name);
    }
    return out;
  }
  std::vector<std::string> dbs;
  if (spec.collection_infos) {
    dbs = {"default"};
  } else if (spec.db_collections && !spec.db_collections->count("*")) {
    for (const auto& [db, list] : *spec.db_collections) dbs.push_back(db);
  } else {
    ASSIGN_OR_RETURN(dbs, source_->ListDatabases());
  }
  std::sort(dbs.begin(), dbs.end());
  for (const auto& db : dbs) {
    auto names = source_->ListCollections(db);
    if (!names.ok()) {
      if (names.status().message().find("not exist") != std::string::npos ||
          names.status().message().find("not found") != std::string::npos) {
        continue;  // a database of the scope that the source does not have (yet)
      }
      return names.status().WithContext(source_->Name());
    }
    std::sort(names->begin(), names->end());
    for (const auto& name : *names) {
      if (spec.CollectionInScope(db, name)) add(db, name);
    }
  }
  return out;
}

CollectionReport Verifier::Verify(const CollectionRef& c) {
  CollectionReport report;
  report.db = c.db;
  report.name = c.name;
  report.target_db = c.target_db;
  report.target_name = c.target_name;
  report.level = options_.level;
  const auto started = Clock::now();
  Status st = Compare(c, &report);
  if (!st.ok()) report.error = Cancelled() ? "the run was stopped before this collection was compared" : st.message();
  report.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return report;
}

Status Verifier::Compare(const CollectionRef& c, CollectionReport* report) {
  auto source_schema = source_->Describe(c.db, c.name);
  if (!source_schema.ok()) return source_schema.status().WithContext(source_->Name());
  if (!*source_schema) return NotFound("the source has no collection " + c.db + "." + c.name);
  auto target_schema = target_->Describe(c.target_db, c.target_name);
  if (!target_schema.ok()) return target_schema.status().WithContext(target_->Name());
  report->target_exists = target_schema->has_value();
  const schemapb::CollectionSchema& schema = **source_schema;
  const schemapb::FieldSchema* pk = nullptr;
  bool partition_key = false;
  for (const auto& f : schema.fields()) {
    if (f.is_primary_key()) pk = &f;
    partition_key = partition_key || f.is_partition_key();
  }
  if (!pk) return Internal("the source schema of " + c.db + "." + c.name + " has no primary key");
  const bool varchar = pk->data_type() == schemapb::VarChar;
  if (report->target_exists) {
    report->schema_differences = SchemaDifferences(schema, **target_schema);
    for (const auto& f : (*target_schema)->fields()) {
      if (f.is_primary_key() && (f.name() != pk->name() || f.data_type() != pk->data_type())) {
        return FailedPrecondition("the primary keys differ (" + pk->name() + " " + TypeName(pk->data_type()) +
                                  " on the source, " + f.name() + " " + TypeName(f.data_type()) +
                                  " on the target): rows cannot be matched");
      }
    }
  } else {
    report->warnings.push_back("the target has no collection " + c.target_db + "." + c.target_name);
  }
  const Table source{c.db, c.name, "", pk->name(), varchar};
  const Table target{c.target_db, c.target_name, "", pk->name(), varchar};
  if (options_.level == "count") return CompareCounts(c, source, target, report);

  std::vector<Unit> units;
  std::vector<std::string> on_source;
  std::vector<std::string> on_target;
  if (!partition_key) {  // Milvus refuses partition names in a partition-key collection's queries
    ASSIGN_OR_RETURN(on_source, source_->ListPartitions(c.db, c.name));
    if (report->target_exists) {
      ASSIGN_OR_RETURN(on_target, target_->ListPartitions(c.target_db, c.target_name));
    }
  }
  const bool only_default = on_source.size() <= 1 && on_target.size() <= 1 &&
                            (on_source.empty() || on_source[0] == "_default") &&
                            (on_target.empty() || on_target[0] == "_default");
  if (partition_key || only_default) {
    units.push_back(Unit{source, target, true, report->target_exists});
  } else {
    // Compared partition by partition: a row in another partition than on the source is a
    // difference (missing in one, extra in the other).
    std::set<std::string> names(on_source.begin(), on_source.end());
    names.insert(on_target.begin(), on_target.end());
    const std::set<std::string> src(on_source.begin(), on_source.end());
    const std::set<std::string> tgt(on_target.begin(), on_target.end());
    for (const auto& p : names) {
      Unit u{source, target, src.count(p) > 0, tgt.count(p) > 0};
      u.source.partition = p;
      u.target.partition = p;
      units.push_back(u);
    }
    report->partitions = static_cast<int>(units.size());
  }
  KeyCompare compare(source_, target_, options_, c, std::move(units), FirstRowLimit(schema, options_.row_page_bytes),
                     report, &wait_warning_);
  RETURN_IF_ERROR(compare.Scan());
  RETURN_IF_ERROR(compare.Recheck(&report->diff));
  if (report->generations > 0 && !options_.applied_ts) AddWarning(report, options_.no_applied_reason);
  if (options_.repair) RETURN_IF_ERROR(compare.Repair());
  return Status::Ok();
}

Status Verifier::CompareCounts(const CollectionRef& c, const Table& source, const Table& target,
                               CollectionReport* report) {
  ReadOptions read;
  read.guarantee_ts = 1;  // no wait for the first look
  auto counts = [&](uint64_t source_ts, uint64_t target_ts) -> Status {
    read.guarantee_ts = source_ts;
    auto s = source_->Count(source, std::nullopt, std::nullopt, read);
    if (!s.ok()) return s.status().WithContext(source_->Name());
    report->source_rows = *s;
    report->target_rows = 0;
    if (!report->target_exists) return Status::Ok();
    read.guarantee_ts = target_ts;
    auto t = target_->Count(target, std::nullopt, std::nullopt, read);
    if (!t.ok()) return t.status().WithContext(target_->Name());
    report->target_rows = *t;
    return Status::Ok();
  };
  RETURN_IF_ERROR(counts(1, 1));
  int64_t diff = report->source_rows - report->target_rows;
  bool persistent = false;
  for (int g = 0; g < options_.generations && diff != 0 && !persistent; ++g) {
    ++report->generations;
    auto ts = source_->AllocTimestamp();
    if (!ts.ok()) return ts.status().WithContext("cannot take a source timestamp for the re-check");
    if (options_.applied_ts) {
      if (wait_warning_.empty()) {
        wait_warning_ = WaitApplied(options_.applied_ts, *ts, options_.applied_wait, options_.applied_stall,
                                    options_.cancelled);
      }
      AddWarning(report, wait_warning_);
    }
    if (Cancelled()) return Unavailable("the run was stopped");
    RETURN_IF_ERROR(counts(*ts, 0));  // the source as of at least H; the target Strong
    const int64_t now = report->source_rows - report->target_rows;
    persistent = now == diff;
    diff = now;
  }
  report->rows_compared = report->source_rows;
  if (options_.on_rows) options_.on_rows(c, report->source_rows);
  if (diff == 0) return Status::Ok();
  if (!persistent) {
    report->diff.in_flux = diff > 0 ? diff : -diff;
    return Status::Ok();
  }
  report->diff.missing = std::max<int64_t>(0, diff);  // the count level knows only the balance
  report->diff.extra = std::max<int64_t>(0, -diff);
  if (report->generations > 0 && !options_.applied_ts) AddWarning(report, options_.no_applied_reason);
  return Status::Ok();
}

}  // namespace cdc::verify
