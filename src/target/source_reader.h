// SourceReader: reads the source Milvus through its own API (sourceConfig.milvus), for what its
// etcd does not hold right: Milvus 2.3 persists a collection's properties one AlterCollection
// late, while DescribeCollection answers the current ones. Owns nothing; the MilvusClient
// outlives it. Thread-safe as MilvusClient is.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "target/milvus_client.h"
#include "util/status.h"

namespace cdc::target {

class SourceReader {
 public:
  explicit SourceReader(MilvusClient* client) : client_(client) {}

  // The collection's properties now. NotFound when the source has no such collection;
  // Unavailable (naming the source Milvus) when it cannot be asked.
  StatusOr<std::vector<std::pair<std::string, std::string>>> CollectionProperties(const std::string& db,
                                                                                const std::string& name);
  // A fresh source timestamp (AllocTimestamp): later than every change the source has written.
  StatusOr<uint64_t> AllocTimestamp();
  MilvusClient* client() const { return client_; }

 private:
  MilvusClient* const client_;
};

}  // namespace cdc::target
