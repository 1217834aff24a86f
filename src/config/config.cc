#include "config/config.h"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace cdc {

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Keys of the official cdc.yaml that this server accepts but does not act on (yet).
const std::vector<std::string> kAcceptedUnused = {
    "detectdeadlock", "replicateid", "dryrun", "packer", "batchmode", "enablereverse",
    "reversemilvus", "currentmilvus", "metastoreconfig.mysqlsourceurl", "sourceconfig.pulsar.webaddress",
    "sourceconfig.pulsar.webport", "sourceconfig.kafka.producer"};

bool HasPrefix(const std::string& path, const std::string& prefix) {
  return path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                            path[prefix.size()] == '.');
}

// Flattens a YAML document into dotted, lower-cased leaf paths and hands out typed
// values; remembers which leaves were read so the rest can be reported as unknown.
class YamlFields {
 public:
  explicit YamlFields(const YAML::Node& root) { Flatten(root, ""); }

  bool Has(const std::string& path) const { return leaves_.count(Lower(path)) > 0; }

  // A mapping where a scalar belongs (e.g. `maxTaskNum: {value: 5}`).
  Status MappingError() const {
    if (mapped_scalar_.empty()) return Status::Ok();
    return InvalidArgument("config key '" + mapped_scalar_ + "': expected a single value, got a mapping");
  }

  Status String(const std::string& path, std::string* out) {
    const YAML::Node* n = Take(path);
    if (!n) return Status::Ok();
    if (!n->IsScalar()) return TypeError(path, "a string");
    *out = n->Scalar();
    return Status::Ok();
  }

  Status Int(const std::string& path, int* out) {
    const YAML::Node* n = Take(path);
    if (!n) return Status::Ok();
    if (!n->IsScalar()) return TypeError(path, "an integer");
    const std::string& s = n->Scalar();
    try {
      size_t used = 0;
      long long v = std::stoll(s, &used, 10);
      if (used != s.size() || v < INT32_MIN || v > INT32_MAX) return TypeError(path, "an integer");
      *out = static_cast<int>(v);
    } catch (const std::exception&) {
      return TypeError(path, "an integer");
    }
    return Status::Ok();
  }

  Status Bool(const std::string& path, bool* out) {
    const YAML::Node* n = Take(path);
    if (!n) return Status::Ok();
    std::string s = n->IsScalar() ? Lower(n->Scalar()) : "";
    if (s == "true" || s == "yes" || s == "on") {
      *out = true;
    } else if (s == "false" || s == "no" || s == "off") {
      *out = false;
    } else {
      return TypeError(path, "true or false");
    }
    return Status::Ok();
  }

  // A list of strings; a single scalar (optionally comma-separated) is accepted too.
  Status StringList(const std::string& path, std::vector<std::string>* out) {
    const YAML::Node* n = Take(path);
    if (!n) return Status::Ok();
    out->clear();
    if (n->IsScalar()) {
      std::stringstream ss(n->Scalar());
      std::string item;
      while (std::getline(ss, item, ',')) {
        if (!item.empty()) out->push_back(item);
      }
      return Status::Ok();
    }
    if (!n->IsSequence()) return TypeError(path, "a list of strings");
    for (const auto& item : *n) {
      if (!item.IsScalar()) return TypeError(path, "a list of strings");
      out->push_back(item.Scalar());
    }
    return Status::Ok();
  }

  // Every leaf below `prefix` as key -> scalar, e.g. librdkafka properties.
  void StringMap(const std::string& prefix, std::map<std::string, std::string>* out) {
    std::string p = Lower(prefix);
    for (auto& [key, leaf] : leaves_) {
      if (HasPrefix(key, p) && key != p && leaf.node.IsScalar()) {
        (*out)[leaf.original.substr(prefix.size() + 1)] = leaf.node.Scalar();
        leaf.taken = true;
      }
    }
  }

  // Reports leaves nobody read: official-but-unused keys as notices, the rest as warnings.
  void Leftovers(std::vector<std::string>* warnings, std::vector<std::string>* notices) const {
    for (const auto& [key, leaf] : leaves_) {
      if (leaf.taken) continue;
      // An empty section of ours (e.g. `retry:` with every child commented out) is fine.
      static const char* kSections[] = {"metastoreconfig", "metastoreconfig.etcd", "sourceconfig",
                                        "sourceconfig.etcd", "sourceconfig.kafka", "sourceconfig.pulsar",
                                        "sourceconfig.milvus",
                                        "retry", "backfill"};
      if (leaf.node.IsNull() &&
          std::any_of(std::begin(kSections), std::end(kSections), [&](const char* s) { return key == s; })) {
        continue;
      }
      bool official = std::any_of(kAcceptedUnused.begin(), kAcceptedUnused.end(),
                                  [&](const std::string& p) { return HasPrefix(key, p); });
      std::string msg = "config key '" + leaf.original + "'";
      if (official) {
        if (notices) notices->push_back(msg + " is accepted for compatibility but not used");
      } else if (warnings) {
        warnings->push_back("unknown " + msg + " is ignored");
      }
    }
  }

 private:
  struct Leaf {
    std::string original;
    YAML::Node node;
    bool taken = false;
  };

  void Flatten(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) {
      for (const auto& kv : node) {
        std::string key = kv.first.Scalar();
        Flatten(kv.second, path.empty() ? key : path + "." + key);
      }
      return;
    }
    if (!path.empty()) leaves_[Lower(path)] = Leaf{path, node, false};
  }

  const YAML::Node* Take(const std::string& path) {
    const std::string low = Lower(path);
    for (auto& [key, leaf] : leaves_) {
      if (HasPrefix(key, low) && key != low) {
        leaf.taken = true;  // reported once, as a type error of the key itself
        mapped_scalar_ = path;
      }
    }
    auto it = leaves_.find(low);
    if (it == leaves_.end() || it->second.node.IsNull()) {
      if (it != leaves_.end()) it->second.taken = true;
      return nullptr;
    }
    it->second.taken = true;
    return &it->second.node;
  }

  Status TypeError(const std::string& path, const std::string& expected) const {
    auto it = leaves_.find(Lower(path));
    std::string got = it != leaves_.end() && it->second.node.IsScalar() ? "'" + it->second.node.Scalar() + "'"
                                                                         : "a non-scalar value";
    return InvalidArgument("config key '" + path + "': expected " + expected + ", got " + got);
  }

  std::map<std::string, Leaf> leaves_;
  std::string mapped_scalar_;  // first scalar key that was given a mapping
};

Status ReadEtcd(YamlFields& f, const std::string& p, EtcdConfig* e) {
  RETURN_IF_ERROR(f.StringList(p + ".address", &e->endpoints));
  RETURN_IF_ERROR(f.String(p + ".rootPath", &e->root_path));
  RETURN_IF_ERROR(f.String(p + ".metaSubPath", &e->meta_sub_path));
  RETURN_IF_ERROR(f.Bool(p + ".enableAuth", &e->enable_auth));
  RETURN_IF_ERROR(f.String(p + ".username", &e->username));
  RETURN_IF_ERROR(f.String(p + ".password", &e->password));
  RETURN_IF_ERROR(f.Bool(p + ".enableTLS", &e->enable_tls));
  RETURN_IF_ERROR(f.String(p + ".tlsCertPath", &e->tls_cert_path));
  RETURN_IF_ERROR(f.String(p + ".tlsKeyPath", &e->tls_key_path));
  RETURN_IF_ERROR(f.String(p + ".tlsCACertPath", &e->tls_ca_cert_path));
  RETURN_IF_ERROR(f.String(p + ".tlsMinVersion", &e->tls_min_version));
  return Status::Ok();
}

Status ValidateEtcd(const std::string& name, const EtcdConfig& e) {
  if (e.enable_auth && (e.username.empty() || e.password.empty())) {
    return InvalidArgument(name + ".enableAuth needs both username and password");
  }
  if (e.enable_tls && (e.tls_cert_path.empty() || e.tls_key_path.empty() || e.tls_ca_cert_path.empty())) {
    return InvalidArgument(name + ".enableTLS needs tlsCertPath, tlsKeyPath and tlsCACertPath");
  }
  static const std::vector<std::string> kVersions = {"1.0", "1.1", "1.2", "1.3"};
  if (std::find(kVersions.begin(), kVersions.end(), e.tls_min_version) == kVersions.end()) {
    return InvalidArgument(name + ".tlsMinVersion must be one of 1.0, 1.1, 1.2, 1.3, got '" +
                           e.tls_min_version + "'");
  }
  return Status::Ok();
}

}  // namespace

Status ParseHostPort(const std::string& address, std::string* host, int* port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 >= address.size()) {
    return InvalidArgument("address '" + address + "' must be HOST:PORT");
  }
  std::string port_text = address.substr(colon + 1);
  if (!std::all_of(port_text.begin(), port_text.end(), ::isdigit) || port_text.size() > 5) {
    return InvalidArgument("address '" + address + "' has an invalid port");
  }
  int p = std::stoi(port_text);
  if (p < 1 || p > 65535) return InvalidArgument("address '" + address + "' has a port outside 1..65535");
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  if (host->empty()) *host = "0.0.0.0";
  *port = p;
  return Status::Ok();
}

std::string EffectiveSecretKeyFile(const MetaStoreConfig& config) {
  if (!config.secret_key_file.empty()) return config.secret_key_file;
  if (strcasecmp(config.store_type.c_str(), "etcd") == 0) return "data/cdc-secret.key";
  return config.sqlite_path + ".key";
}

std::string PulsarSourceConfig::ServiceUrl() const {
  if (address.find("://") != std::string::npos) return address;
  return "pulsar://" + address + ":" + std::to_string(port);
}

Status Config::Validate() const {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(ParseHostPort(address, &host, &port).WithContext("config key 'address'"));
  if (max_task_num <= 0) return InvalidArgument("config key 'maxTaskNum' must be greater than 0");
  if (max_name_length <= 0) return InvalidArgument("config key 'maxNameLength' must be greater than 0");
  static const std::vector<std::string> kLevels = {"trace", "debug", "info", "warn", "warning",
                                                   "error", "critical", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), Lower(log_level)) == kLevels.end()) {
    return InvalidArgument("config key 'logLevel' must be one of debug, info, warn, error, got '" + log_level + "'");
  }
  const std::string type = Lower(meta_store.store_type);
  if (type == "mysql") {
    return InvalidArgument("config key 'metaStoreConfig.storeType': mysql is not supported; use sqlite or etcd");
  }
  if (type != "sqlite" && type != "etcd") {
    return InvalidArgument("config key 'metaStoreConfig.storeType' must be sqlite or etcd, got '" +
                           meta_store.store_type + "'");
  }
  if (type == "sqlite" && meta_store.sqlite_path.empty()) {
    return InvalidArgument("config key 'metaStoreConfig.sqlitePath' is empty");
  }
  if (type == "etcd" && meta_store.etcd.endpoints.empty()) {
    return InvalidArgument("config key 'metaStoreConfig.etcd.address' is empty but storeType is etcd");
  }
  if (meta_store.root_path.empty() || meta_store.root_path.find('/') == 0) {
    return InvalidArgument("config key 'metaStoreConfig.rootPath' must be a non-empty relative prefix");
  }
  RETURN_IF_ERROR(ValidateEtcd("metaStoreConfig.etcd", meta_store.etcd));
  RETURN_IF_ERROR(ValidateEtcd("sourceConfig.etcd", source.etcd));
  if (source.channel_num < 0) return InvalidArgument("config key 'sourceConfig.channelNum' must be >= 0");
  if (backfill.max_chunk_bytes < 4096) {
    return InvalidArgument("config key 'backfill.maxChunkBytes' must be at least 4096");
  }
  if (!source.milvus.uri.empty() && source.milvus.uri.rfind("http://", 0) != 0 &&
      source.milvus.uri.rfind("https://", 0) != 0) {
    return InvalidArgument("config key 'sourceConfig.milvus.uri' must start with http:// or https://, got '" +
                           source.milvus.uri + "'");
  }
  if (source.read_chan_len <= 0) return InvalidArgument("config key 'sourceConfig.readChanLen' must be > 0");
  if (source.UsesPulsar()) {
    if (!source.kafka.address.empty()) {
      return InvalidArgument("config keys 'sourceConfig.kafka.address' and 'sourceConfig.pulsar.address' are both set; "
                             "the source uses one message queue");
    }
    const std::string url = source.pulsar.ServiceUrl();
    if (url.rfind("pulsar://", 0) != 0 && url.rfind("pulsar+ssl://", 0) != 0) {
      return InvalidArgument("config key 'sourceConfig.pulsar.address' must be pulsar://host:port, "
                             "pulsar+ssl://host:port or a host name, got '" + source.pulsar.address + "'");
    }
    if (source.pulsar.port <= 0 || source.pulsar.port > 65535) {
      return InvalidArgument("config key 'sourceConfig.pulsar.port' must be a TCP port");
    }
    if (source.pulsar.tenant.empty() || source.pulsar.ns.empty()) {
      return InvalidArgument("config keys 'sourceConfig.pulsar.tenant' and 'sourceConfig.pulsar.namespace' must not be empty");
    }
    const std::string plugin = Lower(source.pulsar.auth_plugin);
    if (!plugin.empty() && plugin != "token" && plugin != "basic" &&
        plugin != "org.apache.pulsar.client.impl.auth.authenticationtoken" &&
        plugin != "org.apache.pulsar.client.impl.auth.authenticationbasic") {
      return InvalidArgument("config key 'sourceConfig.pulsar.authPlugin' must be token or basic, got '" +
                             source.pulsar.auth_plugin + "'");
    }
  }
  if (retry.retry_times < 0 || retry.init_backoff_s < 0 || retry.max_backoff_s < 0) {
    return InvalidArgument("config keys 'retry.*' must be >= 0");
  }
  if (max_request_bytes < 1024) return InvalidArgument("config key 'maxRequestBytes' must be at least 1024");
  return Status::Ok();
}

StatusOr<Config> ParseConfig(const std::string& yaml_text, std::vector<std::string>* warnings,
                             std::vector<std::string>* notices) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("config is not valid YAML: ") + e.what());
  }
  Config c;
  if (root.IsNull()) return c;
  if (!root.IsMap()) return InvalidArgument("config must be a YAML mapping of keys");
  YamlFields f(root);

  RETURN_IF_ERROR(f.String("address", &c.address));
  RETURN_IF_ERROR(f.Int("maxTaskNum", &c.max_task_num));
  RETURN_IF_ERROR(f.Int("maxNameLength", &c.max_name_length));
  RETURN_IF_ERROR(f.String("logLevel", &c.log_level));
  int max_request = static_cast<int>(c.max_request_bytes);
  RETURN_IF_ERROR(f.Int("maxRequestBytes", &max_request));
  c.max_request_bytes = max_request;

  MetaStoreConfig& m = c.meta_store;
  RETURN_IF_ERROR(f.String("metaStoreConfig.storeType", &m.store_type));
  RETURN_IF_ERROR(f.String("metaStoreConfig.sqlitePath", &m.sqlite_path));
  RETURN_IF_ERROR(f.String("metaStoreConfig.rootPath", &m.root_path));
  RETURN_IF_ERROR(f.String("metaStoreConfig.secretKeyFile", &m.secret_key_file));
  RETURN_IF_ERROR(ReadEtcd(f, "metaStoreConfig.etcd", &m.etcd));
  RETURN_IF_ERROR(f.StringList("metaStoreConfig.etcdEndpoints", &m.etcd.endpoints));  // v1.0.0 form

  SourceConfig& s = c.source;
  RETURN_IF_ERROR(ReadEtcd(f, "sourceConfig.etcd", &s.etcd));
  if (s.etcd.endpoints.empty()) s.etcd.endpoints = {"127.0.0.1:2379"};
  if (s.etcd.root_path.empty()) s.etcd.root_path = "by-dev";
  RETURN_IF_ERROR(f.StringList("sourceConfig.etcdAddress", &s.etcd.endpoints));  // v1.0.0 forms
  RETURN_IF_ERROR(f.String("sourceConfig.etcdRootPath", &s.etcd.root_path));
  RETURN_IF_ERROR(f.String("sourceConfig.etcdMetaSubPath", &s.etcd.meta_sub_path));
  RETURN_IF_ERROR(f.String("sourceConfig.kafka.address", &s.kafka.address));
  RETURN_IF_ERROR(f.String("sourceConfig.kafka.saslUsername", &s.kafka.sasl_username));
  RETURN_IF_ERROR(f.String("sourceConfig.kafka.saslPassword", &s.kafka.sasl_password));
  RETURN_IF_ERROR(f.String("sourceConfig.kafka.saslMechanisms", &s.kafka.sasl_mechanisms));
  RETURN_IF_ERROR(f.String("sourceConfig.kafka.securityProtocol", &s.kafka.security_protocol));
  f.StringMap("sourceConfig.kafka.consumer", &s.kafka.consumer);
  RETURN_IF_ERROR(f.String("sourceConfig.pulsar.address", &s.pulsar.address));
  RETURN_IF_ERROR(f.Int("sourceConfig.pulsar.port", &s.pulsar.port));
  RETURN_IF_ERROR(f.String("sourceConfig.pulsar.tenant", &s.pulsar.tenant));
  RETURN_IF_ERROR(f.String("sourceConfig.pulsar.namespace", &s.pulsar.ns));
  RETURN_IF_ERROR(f.String("sourceConfig.pulsar.authPlugin", &s.pulsar.auth_plugin));
  RETURN_IF_ERROR(f.String("sourceConfig.pulsar.authParams", &s.pulsar.auth_params));
  RETURN_IF_ERROR(f.String("sourceConfig.pulsar.tlsTrustCertsFilePath", &s.pulsar.tls_trust_certs_file));
  RETURN_IF_ERROR(f.Bool("sourceConfig.pulsar.tlsAllowInsecureConnection", &s.pulsar.tls_allow_insecure));
  if (f.Has("sourceConfig.pulsar.maxMessageSize")) {  // a number, or a string of one (the official file quotes it)
    std::string v;
    RETURN_IF_ERROR(f.String("sourceConfig.pulsar.maxMessageSize", &v));
    try {
      size_t used = 0;
      s.pulsar.max_message_size = std::stoll(v, &used);
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      return InvalidArgument("config key 'sourceConfig.pulsar.maxMessageSize' must be a number of bytes, got '" + v +
                             "'");
    }
  }
  RETURN_IF_ERROR(f.String("sourceConfig.milvus.uri", &s.milvus.uri));
  RETURN_IF_ERROR(f.String("sourceConfig.milvus.token", &s.milvus.token));
  RETURN_IF_ERROR(f.String("sourceConfig.milvus.caPemPath", &s.milvus.ca_pem_path));
  RETURN_IF_ERROR(f.String("sourceConfig.milvus.serverName", &s.milvus.server_name));
  RETURN_IF_ERROR(f.Int("sourceConfig.milvus.connectTimeout", &s.milvus.connect_timeout_s));
  RETURN_IF_ERROR(f.String("sourceConfig.replicateChan", &s.replicate_chan));
  RETURN_IF_ERROR(f.Int("sourceConfig.channelNum", &s.channel_num));
  RETURN_IF_ERROR(f.Int("sourceConfig.readChanLen", &s.read_chan_len));
  RETURN_IF_ERROR(f.Bool("sourceConfig.earlyApply", &s.early_apply));
  RETURN_IF_ERROR(f.Bool("sourceConfig.shareReaders", &s.share_readers));
  RETURN_IF_ERROR(f.Int("sourceConfig.timeTickInterval", &s.time_tick_interval_ms));
  RETURN_IF_ERROR(f.String("sourceConfig.defaultPartitionName", &s.default_partition_name));

  RETURN_IF_ERROR(f.Int("backfill.maxChunkBytes", &c.backfill.max_chunk_bytes));
  RETURN_IF_ERROR(f.Int("retry.retryTimes", &c.retry.retry_times));
  RETURN_IF_ERROR(f.Int("retry.initBackOff", &c.retry.init_backoff_s));
  RETURN_IF_ERROR(f.Int("retry.maxBackOff", &c.retry.max_backoff_s));

  RETURN_IF_ERROR(f.MappingError());
  f.Leftovers(warnings, notices);
  RETURN_IF_ERROR(c.Validate());
  return c;
}

StatusOr<Config> LoadConfigFile(const std::string& path, std::vector<std::string>* warnings,
                                std::vector<std::string>* notices) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFound("cannot read config file '" + path + "': " +
                    (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  }
  std::ifstream in(path);
  if (!in) return NotFound("cannot read config file '" + path + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  auto parsed = ParseConfig(buf.str(), warnings, notices);
  if (!parsed.ok()) return parsed.status().WithContext("config file '" + path + "'");
  return parsed;
}

}  // namespace cdc
