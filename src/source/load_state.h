// Which source collections are loaded, read once from queryCoord's records in etcd
// (<metaRoot>/querycoord-collection-loadinfo/<collectionID>). Used when a task starts, so a
// collection loaded before the task existed is loaded on the target too; later loads and
// releases arrive through the replicate channel.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "source/etcd_client.h"
#include "util/status.h"

namespace cdc::source {

// Collection id -> replica number, for collections loaded by LoadCollection (a partial
// load, by LoadPartitions, is not listed). `meta_root` is "<rootPath>/<metaSubPath>".
StatusOr<std::map<int64_t, int32_t>> ReadLoadedCollections(EtcdClient* etcd, const std::string& meta_root);

// Decodes one record; false when it is not a collection-wide load.
bool ParseCollectionLoadInfo(const std::string& value, int64_t* collection_id, int32_t* replicas);

}  // namespace cdc::source
