// FakeSide: an in-memory Milvus for the verifier's tests, the fake at the VerifySide seam.
// Collections have a primary key `pk` (INT64 or VARCHAR), `val` INT64, `vec` FLOAT_VECTOR(2) and
// `meta` JSON, and one or more partitions. It answers like Milvus 2.3: pages in key order where
// every copy of a duplicated key counts against the limit (so such pages come back short), one
// row per key, count(*) counting copies. `hook` runs before every call (a live stream). Thread-
// safe: one mutex.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "verify/verify_side.h"

namespace cdc::verify::testing {

namespace schemapb = milvus::proto::schema;

struct FakeRow {
  int64_t val = 0;
  std::vector<float> vec = {0, 0};
  std::string meta = "{}";
  int copies = 1;  // > 1: a duplicated primary key
};

class FakeSide : public VerifySide {
 public:
  using Rows = std::map<PkValue, FakeRow>;

  explicit FakeSide(std::string name) : name_(std::move(name)) {}

  // Creates (or empties) a collection with these partitions.
  void AddCollection(const std::string& db, const std::string& name, bool varchar_pk = false,
                     std::vector<std::string> partitions = {"_default"}, bool partition_key = false) {
    std::lock_guard<std::mutex> lock(mu_);
    Coll& c = colls_[{db, name}];
    c.varchar = varchar_pk;
    c.partition_key = partition_key;
    c.parts.clear();
    for (const auto& p : partitions) c.parts[p];
  }
  void Put(const std::string& db, const std::string& name, const PkValue& key, FakeRow row,
           const std::string& partition = "_default") {
    std::lock_guard<std::mutex> lock(mu_);
    colls_[{db, name}].parts[partition][key] = std::move(row);
  }
  void Erase(const std::string& db, const std::string& name, const PkValue& key,
             const std::string& partition = "_default") {
    std::lock_guard<std::mutex> lock(mu_);
    colls_[{db, name}].parts[partition].erase(key);
  }
  // The rows of one partition, to edit in place (under the caller's care: not while reading).
  Rows& RowsOf(const std::string& db, const std::string& name, const std::string& partition = "_default") {
    return colls_[{db, name}].parts[partition];
  }
  // Runs before every call, with the call's name ("ReadRange", "ReadKeys", "Count", ...).
  void SetHook(std::function<void(const std::string&)> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    hook_ = std::move(hook);
  }
  int calls(const std::string& op) {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_[op];
  }

  StatusOr<std::vector<std::string>> ListDatabases() override {
    Enter("ListDatabases");
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& [k, c] : colls_) {
      if (std::find(out.begin(), out.end(), k.first) == out.end()) out.push_back(k.first);
    }
    return out;
  }
  StatusOr<std::vector<std::string>> ListCollections(const std::string& db) override {
    Enter("ListCollections");
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& [k, c] : colls_) {
      if (k.first == db) out.push_back(k.second);
    }
    return out;
  }
  StatusOr<std::optional<schemapb::CollectionSchema>> Describe(const std::string& db, const std::string& name) override {
    Enter("Describe");
    std::lock_guard<std::mutex> lock(mu_);
    auto it = colls_.find({db, name});
    if (it == colls_.end()) return std::optional<schemapb::CollectionSchema>();
    schemapb::CollectionSchema s;
    s.set_name(name);
    auto* pk = s.add_fields();
    pk->set_name("pk");
    pk->set_is_primary_key(true);
    pk->set_data_type(it->second.varchar ? schemapb::VarChar : schemapb::Int64);
    auto* val = s.add_fields();
    val->set_name("val");
    val->set_data_type(schemapb::Int64);
    val->set_is_partition_key(it->second.partition_key);
    auto* vec = s.add_fields();
    vec->set_name("vec");
    vec->set_data_type(schemapb::FloatVector);
    auto* dim = vec->add_type_params();
    dim->set_key("dim");
    dim->set_value("2");
    auto* meta = s.add_fields();
    meta->set_name("meta");
    meta->set_data_type(schemapb::JSON);
    return std::optional<schemapb::CollectionSchema>(s);
  }
  StatusOr<std::vector<std::string>> ListPartitions(const std::string& db, const std::string& name) override {
    Enter("ListPartitions");
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& [p, rows] : colls_[{db, name}].parts) out.push_back(p);
    return out;
  }
  StatusOr<Page> ReadRange(const Table& t, const std::optional<PkValue>& after, const std::optional<PkValue>& upto,
                           int64_t limit, const ReadOptions& options) override {
    Enter("ReadRange");
    std::lock_guard<std::mutex> lock(mu_);
    Rows merged = Merged(t);
    std::vector<std::pair<PkValue, const FakeRow*>> out;
    int64_t used = 0;
    for (const auto& [k, row] : merged) {
      if (after && !(*after < k)) continue;
      if (upto && *upto < k) break;
      if (limit > 0 && used + row.copies > limit) {
        if (used == 0) out.emplace_back(k, &row);  // at least one row
        break;
      }
      used += row.copies;  // Milvus 2.3 counts every copy against the limit
      out.emplace_back(k, &row);
    }
    return Build(t, out, options);
  }
  StatusOr<Page> ReadKeys(const Table& t, const std::vector<PkValue>& keys, const ReadOptions& options) override {
    Enter("ReadKeys");
    std::lock_guard<std::mutex> lock(mu_);
    Rows merged = Merged(t);
    std::vector<std::pair<PkValue, const FakeRow*>> out;
    for (const auto& k : keys) {
      auto it = merged.find(k);
      if (it != merged.end()) out.emplace_back(k, &it->second);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    out.erase(std::unique(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first == b.first; }),
              out.end());
    return Build(t, out, options);
  }
  StatusOr<int64_t> Count(const Table& t, const std::optional<PkValue>& after, const std::optional<PkValue>& upto,
                          const ReadOptions& options) override {
    (void)options;
    Enter("Count");
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = 0;
    for (const auto& [k, row] : Merged(t)) {
      if (after && !(*after < k)) continue;
      if (upto && *upto < k) break;
      n += row.copies;
    }
    return n;
  }
  StatusOr<uint64_t> AllocTimestamp() override {
    Enter("AllocTimestamp");
    std::lock_guard<std::mutex> lock(mu_);
    return ++ts_;
  }
  std::string Name() const override { return name_; }

  uint64_t last_ts() {
    std::lock_guard<std::mutex> lock(mu_);
    return ts_;
  }

 private:
  struct Coll {
    bool varchar = false;
    bool partition_key = false;
    std::map<std::string, Rows> parts;
  };

  void Enter(const std::string& op) {
    std::function<void(const std::string&)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_[op];
      hook = hook_;
    }
    if (hook) hook(op);
  }

  // The rows of the table: one partition, or every partition (a key in two counts its copies).
  Rows Merged(const Table& t) {
    Rows out;
    auto it = colls_.find({t.db, t.name});
    if (it == colls_.end()) return out;
    for (const auto& [p, rows] : it->second.parts) {
      if (!t.partition.empty() && p != t.partition) continue;
      for (const auto& [k, row] : rows) {
        auto [slot, fresh] = out.emplace(k, row);
        if (!fresh) slot->second.copies += row.copies;
      }
    }
    return out;
  }

  static Page Build(const Table& t, const std::vector<std::pair<PkValue, const FakeRow*>>& rows,
                    const ReadOptions& options) {
    const bool all = std::find(options.output_fields.begin(), options.output_fields.end(), "*") !=
                     options.output_fields.end();
    Page page;
    schemapb::FieldData pk;
    pk.set_field_name("pk");
    pk.set_type(t.varchar_pk ? schemapb::VarChar : schemapb::Int64);
    schemapb::FieldData val;
    val.set_field_name("val");
    val.set_type(schemapb::Int64);
    schemapb::FieldData vec;
    vec.set_field_name("vec");
    vec.set_type(schemapb::FloatVector);
    vec.mutable_vectors()->set_dim(2);
    schemapb::FieldData meta;
    meta.set_field_name("meta");
    meta.set_type(schemapb::JSON);
    for (const auto& [k, row] : rows) {
      page.keys.push_back(k);
      if (const auto* s = std::get_if<std::string>(&k)) {
        pk.mutable_scalars()->mutable_string_data()->add_data(*s);
      } else {
        pk.mutable_scalars()->mutable_long_data()->add_data(std::get<int64_t>(k));
      }
      val.mutable_scalars()->mutable_long_data()->add_data(row->val);
      for (float f : row->vec) vec.mutable_vectors()->mutable_float_vector()->add_data(f);
      meta.mutable_scalars()->mutable_json_data()->add_data(row->meta);
    }
    if (!pk.has_scalars()) pk.mutable_scalars();
    page.fields.push_back(pk);
    if (all) {
      page.fields.push_back(val);
      page.fields.push_back(vec);
      page.fields.push_back(meta);
    }
    for (const auto& f : page.fields) page.bytes += f.ByteSizeLong();
    return page;
  }

  const std::string name_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Coll> colls_;
  std::function<void(const std::string&)> hook_;
  std::map<std::string, int> calls_;
  uint64_t ts_ = 1000;
};

}  // namespace cdc::verify::testing
