#include "source/load_state.h"

#include "milvus/query_coord.pb.h"
#include "util/log.h"

namespace cdc::source {

namespace {
constexpr int32_t kLoadTypeCollection = 2;
}  // namespace

bool ParseCollectionLoadInfo(const std::string& value, int64_t* collection_id, int32_t* replicas) {
  milvus::proto::query::CollectionLoadInfo info;
  if (!info.ParseFromString(value) || info.collectionid() == 0) return false;
  if (info.load_type() != 0 && info.load_type() != kLoadTypeCollection) return false;
  *collection_id = info.collectionid();
  *replicas = info.replica_number() > 0 ? info.replica_number() : 1;
  return true;
}

StatusOr<std::map<int64_t, int32_t>> ReadLoadedCollections(EtcdClient* etcd, const std::string& meta_root) {
  const std::string prefix = meta_root + "/querycoord-collection-loadinfo/";
  auto kvs = etcd->GetPrefix(prefix);
  if (!kvs.ok()) return kvs.status().WithContext("cannot read the source load state under " + prefix);
  std::map<int64_t, int32_t> loaded;
  for (const auto& kv : *kvs) {
    int64_t id = 0;
    int32_t replicas = 1;
    if (ParseCollectionLoadInfo(kv.value, &id, &replicas)) {
      loaded[id] = replicas;
    } else {
      GetLogger("source")->debug("etcd {}: not a collection load record, skipped", kv.key);
    }
  }
  return loaded;
}

}  // namespace cdc::source
