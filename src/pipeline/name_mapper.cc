#include "pipeline/name_mapper.h"

namespace cdc::pipeline {

bool TaskScope::CollectionInScope(const std::string& db, const std::string& collection) const {
  return spec_.CollectionInScope(db, collection);
}

bool TaskScope::ReplayFromCreation(const std::string& db, const std::string& collection) const {
  const CollectionInfo* entry = spec_.EntryFor(db, collection);
  return entry && entry->use_start_position;
}

bool TaskScope::DatabaseInScope(const std::string& db) const {
  if (!spec_.db_collections) return false;
  for (const auto& [key, list] : *spec_.db_collections) {
    if (key == "*" || key == db) return true;
  }
  return false;
}

std::string TaskScope::MapDb(const std::string& db) const {
  for (const auto& m : spec_.name_mapping) {
    if (m.source_db == db && m.collection_mapping.empty() && !m.target_db.empty()) return m.target_db;
  }
  return db;
}

std::pair<std::string, std::string> TaskScope::Map(const std::string& db, const std::string& collection) const {
  for (const auto& m : spec_.name_mapping) {
    if (m.source_db != db) continue;
    const std::string target_db = m.target_db.empty() ? db : m.target_db;
    if (m.collection_mapping.empty()) return {target_db, collection};
    auto it = m.collection_mapping.find(collection);
    if (it != m.collection_mapping.end()) return {target_db, it->second};
  }
  return {db, collection};
}

target::ConnectParams TargetConnectParams(const MilvusConnectParam& m) {
  target::ConnectParams p;
  p.uri = m.EffectiveUri();
  p.token = m.EffectiveToken();
  p.server_name = m.dial_config.server_name;
  p.server_pem_path = m.dial_config.server_pem_path;
  p.ca_pem_path = m.dial_config.ca_pem_path;
  p.client_pem_path = m.dial_config.client_pem_path;
  p.client_key_path = m.dial_config.client_key_path;
  p.connect_timeout_s = m.connect_timeout > 0 ? m.connect_timeout : 5;
  return p;
}

}  // namespace cdc::pipeline
