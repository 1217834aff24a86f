// TaskSpec: what a task replicates and where to, as given to `create`. Parsed from
// the request JSON (official field names), validated in the official order, stored as
// normalized JSON without credentials, and rendered (redacted) for get/list.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace cdc {

struct DialConfig {
  std::string server_name;
  std::string server_pem_path;
  std::string ca_pem_path;
  std::string client_pem_path;
  std::string client_key_path;
};

struct MilvusConnectParam {
  std::string host;
  int64_t port = 0;
  bool enable_tls = false;
  std::string username;  // secret
  std::string password;  // secret
  std::string uri;
  std::string token;  // secret
  DialConfig dial_config;
  int channel_num = 0;
  bool ignore_partition = false;
  int connect_timeout = 0;  // seconds; <= 0 means 5
  // How rows reach the target: "auto" (detect when the task starts), "api" (plain Insert/Delete
  // on a writable target) or "replicate" (ReplicateMessage to a common.ttMsgEnabled=false standby).
  std::string write_mode = "auto";

  bool Empty() const { return uri.empty() && host.empty() && port <= 0; }
  // The URI to dial: `uri`, else built from host/port/enable_tls.
  std::string EffectiveUri() const;
  // The token to send: `token`, else "username:password" when both are set.
  std::string EffectiveToken() const;
};

struct KafkaConnectParam {
  std::string address;
  std::string topic;
  bool enable_sasl = false;
  std::string sasl_username;  // secret
  std::string sasl_password;  // secret
  std::string sasl_mechanisms;
  std::string sasl_security_protocol;
};

struct CollectionInfo {
  std::string name;
  std::optional<std::map<std::string, std::string>> positions;  // vchannel -> base64 MsgPosition
  bool use_start_position = false;
};

struct NameMapping {
  std::string source_db;
  std::string target_db;
  std::map<std::string, std::string> collection_mapping;
};

struct TaskSpec {
  std::string task_id;  // client-chosen; empty means "generate"
  MilvusConnectParam milvus;
  KafkaConnectParam kafka;
  std::optional<std::vector<CollectionInfo>> collection_infos;
  std::optional<std::map<std::string, std::vector<CollectionInfo>>> db_collections;
  std::string rpc_channel_name;
  std::string rpc_channel_position;
  bool enable_user_role = false;
  int64_t buffer_period = 0;
  int64_t buffer_size = 0;
  std::vector<NameMapping> name_mapping;
  bool disable_auto_start = false;
  // Set by the server at creation: names other tasks on the same target already own.
  std::vector<std::string> exclude_collections;
  // Initial passwords of source users to create on the target when they are missing there
  // (with enable_user_role). Secret: stored sealed with the credentials, never returned or logged.
  std::map<std::string, std::string> user_passwords;
  // Copy the rows each in-scope collection holds when the task starts (and when one enters
  // the scope later), while streaming. Default false: the official behaviour.
  bool backfill = false;
  // "db.collection" names the operator chose to leave behind (request `skip`); out of scope.
  std::vector<std::string> skip_collections;

  // "db.collection" names this task covers (collection_infos imply db "default").
  std::vector<std::string> ScopeNames() const;
  // The scope entry covering source collection `db`.`collection`, or null: as the official
  // server, a db_collections task uses the list of `db`, else the list of `*`; a list covers a
  // collection it names or holds `*`. Excluded and skipped names are out.
  const CollectionInfo* EntryFor(const std::string& db, const std::string& collection) const;
  bool CollectionInScope(const std::string& db, const std::string& collection) const;
};

struct SpecLimits {
  int max_name_length = 256;
  std::string replicate_chan;  // the source replicate channel from the config
};

// Decodes `request_data` of a create request. Type mismatches are InvalidArgument
// naming every bad field. Does not validate values (see ValidateSpec).
StatusOr<TaskSpec> DecodeTaskSpec(const nlohmann::json& request_data);

// Applies the official validation rules in the official order; the messages match
// the official server's texts.
Status ValidateSpec(const TaskSpec& spec, const SpecLimits& limits);

// Normalized JSON of the spec without credentials or user passwords (what is stored and compared).
nlohmann::json SpecToJson(const TaskSpec& spec);
// Only the secrets (credentials and user passwords), as JSON text (sealed by the store).
std::string SecretsToJson(const TaskSpec& spec);
// Rebuilds a spec from stored JSON and credentials.
StatusOr<TaskSpec> SpecFromStored(const std::string& spec_json, const std::string& secrets_json);

// The task object of get/list: official field names, secrets omitted.
nlohmann::json SpecToTaskObject(const TaskSpec& spec);

}  // namespace cdc
