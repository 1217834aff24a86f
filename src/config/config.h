// Config: the server's typed, validated configuration, read once at start-up from a
// YAML file whose keys follow the official milvus-cdc `cdc.yaml` (matched case-insensitively).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "util/status.h"

namespace cdc {

struct EtcdConfig {
  std::vector<std::string> endpoints;
  std::string root_path;
  std::string meta_sub_path = "meta";
  bool enable_auth = false;
  std::string username;
  std::string password;
  bool enable_tls = false;
  std::string tls_cert_path;
  std::string tls_key_path;
  std::string tls_ca_cert_path;
  std::string tls_min_version = "1.3";
};

struct MetaStoreConfig {
  std::string store_type = "sqlite";  // sqlite | etcd
  std::string sqlite_path = "data/cdc-meta.db";
  std::string root_path = "cdc";  // key prefix, so several servers can share one store
  EtcdConfig etcd;
  // File holding the key that encrypts target credentials at rest; created (mode 0600)
  // when missing. Empty: "<sqlite_path>.key" for sqlite.
  std::string secret_key_file;
};

// The key file that seals the store's credentials: secret_key_file, else data/cdc-secret.key for
// an etcd store, else "<sqlite_path>.key".
std::string EffectiveSecretKeyFile(const MetaStoreConfig& config);

struct KafkaSourceConfig {
  std::string address;
  std::map<std::string, std::string> consumer;  // extra librdkafka properties
  std::string sasl_username;
  std::string sasl_password;
  std::string sasl_mechanisms;
  std::string security_protocol;
};

// sourceConfig.pulsar, as the official cdc.yaml has it. A non-empty address selects Pulsar.
struct PulsarSourceConfig {
  std::string address;  // pulsar://host:port, pulsar+ssl://host:port, or a host (with `port`)
  int port = 6650;
  std::string web_address;  // accepted (the official server uses it only to delete subscriptions)
  int web_port = 80;
  int64_t max_message_size = 5 << 20;
  std::string tenant = "public";
  std::string ns = "default";
  std::string auth_plugin;  // "", token (or AuthenticationToken's class name), basic
  std::string auth_params;  // "token:<jwt>" / "file:<path>" / "userId:u,password:p"; secret
  std::string tls_trust_certs_file;  // pulsar+ssl: CA bundle; empty = the system's
  bool tls_allow_insecure = false;
  // The service URL the reader connects to: address as given if it has a scheme, else
  // pulsar://address:port.
  std::string ServiceUrl() const;
};

// The source Milvus's own API (optional). Read for what etcd does not hold right: Milvus 2.3
// writes a collection's properties to etcd one AlterCollection late (docs/milvus-notes.md).
struct SourceMilvusConfig {
  std::string uri;    // http(s)://host:port; empty: not used
  std::string token;  // user:password; secret
  std::string ca_pem_path;
  std::string server_name;
  int connect_timeout_s = 5;
};

struct SourceConfig {
  EtcdConfig etcd;
  KafkaSourceConfig kafka;
  PulsarSourceConfig pulsar;
  SourceMilvusConfig milvus;
  bool UsesPulsar() const { return !pulsar.address.empty(); }
  std::string replicate_chan = "by-dev-replicate-msg";
  int channel_num = 0;
  int read_chan_len = 4;
  // Writable targets: apply inserts and deletes as soon as they are read, not at their tick.
  bool early_apply = true;
  // Tasks of this server share one reader per source channel (ChannelHub).
  bool share_readers = true;
  int time_tick_interval_ms = 500;
  std::string default_partition_name = "_default";
};

struct RetryConfig {
  int retry_times = 0;       // 0: the official default budget (about two days)
  int init_backoff_s = 1;
  int max_backoff_s = 10;
};

struct BackfillConfig {
  int max_chunk_bytes = 4 << 20;  // rows read from the source per chunk, by size (<= 16384 rows)
};

struct Config {
  std::string address = "0.0.0.0:8444";
  int max_task_num = 100;
  int max_name_length = 256;
  std::string log_level = "info";
  int64_t max_request_bytes = 4 << 20;
  MetaStoreConfig meta_store;
  SourceConfig source;
  RetryConfig retry;
  BackfillConfig backfill;

  // Checks values that do not depend on the file's shape (ranges, enums).
  Status Validate() const;
};

// Parses YAML text. Unknown keys are reported in `warnings`, keys of the official
// server that we accept but do not use yet in `notices`. Type errors and invalid
// values are errors naming the key.
StatusOr<Config> ParseConfig(const std::string& yaml_text, std::vector<std::string>* warnings,
                             std::vector<std::string>* notices);

// Reads and parses a file; a missing or unreadable file is an error.
StatusOr<Config> LoadConfigFile(const std::string& path, std::vector<std::string>* warnings,
                                std::vector<std::string>* notices);

// Splits "host:port"; port must be 1..65535.
Status ParseHostPort(const std::string& address, std::string* host, int* port);

}  // namespace cdc
