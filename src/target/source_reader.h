// SourceReader: reads the source Milvus through its own API (sourceConfig.milvus), for what its
// etcd does not hold right: Milvus 2.3 persists a collection's properties one AlterCollection
// late, while DescribeCollection answers the current ones; and for source timestamps (verify,
// backfill). Owns nothing; the MilvusClient outlives it. Thread-safe as MilvusClient is.
#pragma once

#include <cstdint>
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
  MilvusClient* client() const { return client_; }

  // A fresh hybrid timestamp from the source's TSO (the AllocTimestamp RPC, Milvus 2.3+): every
  // change the source acknowledged before the call has a smaller timestamp.
  StatusOr<uint64_t> AllocTimestamp();

 private:
  MilvusClient* const client_;
};

}  // namespace cdc::target
