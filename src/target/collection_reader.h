// CollectionReader: reads one collection's rows through the Milvus Query API, in primary-key
// order, a page at a time: what backfill copies from the source and verify compares on both
// sides. Milvus returns a limited query in primary-key order (each segment its first matches,
// the proxy merging by smallest key), so paging is "pk > last key" with a limit; a page may come
// back short before the end, only an empty page ends a range. VarChar keys compare bytewise.
// Owns nothing; the MilvusClient outlives it. Thread-safe as MilvusClient is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "schema.pb.h"
#include "target/milvus_client.h"
#include "util/status.h"

namespace cdc::target {

using PkValue = std::variant<int64_t, std::string>;

// "12" or "\"a\\\"b\"": a key as a literal of a Milvus 2.3 boolean expression.
std::string PkLiteral(const PkValue& pk);
// For logs and sample lists: 12, or the string itself.
std::string PkText(const PkValue& pk);

// One page: columns as Milvus returns them (output fields, the dynamic field as "$meta"), and
// the primary keys in row order.
struct Page {
  std::vector<milvus::proto::schema::FieldData> fields;
  std::vector<PkValue> keys;
  size_t bytes = 0;  // serialized size of the columns
};

struct ReadOptions {
  std::vector<std::string> partitions;  // empty: the whole collection
  std::vector<std::string> output_fields = {"*"};
  // 0: Strong consistency. Otherwise the read waits until the server has applied everything up
  // to this source timestamp (Customized consistency) and may see later changes too.
  uint64_t guarantee_ts = 0;
};

class CollectionReader {
 public:
  // Max rows per query: Milvus caps offset + limit at 16384 (maxQueryResultWindow).
  static constexpr int64_t kMaxPageRows = 16384;

  CollectionReader(MilvusClient* client, std::string db, std::string collection, std::string pk_field,
                   bool varchar_pk);

  // Rows with after < pk <= upto (either bound optional), at most `limit`, in key order.
  // limit 0: no limit, every row of the range (only for ranges known to be small). Milvus 2.3
  // counts each copy of a duplicated key against a limit, so a page of a collection with
  // duplicate keys can come back short and, with several shards, skip keys below its last one.
  // A range's count(*) equal to the page's size proves the page complete.
  StatusOr<Page> ReadRange(const std::optional<PkValue>& after, const std::optional<PkValue>& upto, int64_t limit,
                           const ReadOptions& options) const;
  // The rows of these keys (those that exist, one row per key), in key order.
  StatusOr<Page> ReadKeys(const std::vector<PkValue>& keys, const ReadOptions& options) const;
  // count(*) of the rows with after < pk <= upto (Strong, or at options.guarantee_ts).
  StatusOr<int64_t> Count(const std::optional<PkValue>& after, const std::optional<PkValue>& upto,
                          const ReadOptions& options) const;
  // The largest key, nullopt when the collection is empty. Bounds a copy so it does not chase
  // keys inserted meanwhile. Found by binary search with one-row probes: about 64 for INT64,
  // about 9 per character for ASCII VARCHAR keys (22 for a non-ASCII character). Under
  // concurrent writes the result is a ceiling: at least every key present throughout.
  StatusOr<std::optional<PkValue>> MaxKey(const ReadOptions& options) const;

  const std::string& db() const { return db_; }
  const std::string& collection() const { return collection_; }
  const std::string& pk_field() const { return pk_field_; }
  bool varchar_pk() const { return varchar_pk_; }

 private:
  StatusOr<Page> Query(const std::string& expr, int64_t limit, const ReadOptions& options) const;
  StatusOr<std::optional<int64_t>> MaxIntKey(const ReadOptions& options) const;
  StatusOr<std::string> MaxVarcharKey(const ReadOptions& options) const;
  // Whether a key `op` `value` exists (op is ">" or ">="); First: the smallest such VARCHAR key.
  StatusOr<bool> Exists(const char* op, const PkValue& value, const ReadOptions& options) const;
  StatusOr<std::optional<std::string>> First(const char* op, const std::string& value,
                                             const ReadOptions& options) const;
  std::string RangeExpr(const std::optional<PkValue>& after, const std::optional<PkValue>& upto) const;

  MilvusClient* const client_;
  const std::string db_;
  const std::string collection_;
  const std::string pk_field_;
  const bool varchar_pk_;
};

// Which column of `page` holds the primary key, or -1.
int PkColumn(const Page& page, const std::string& pk_field);

}  // namespace cdc::target
