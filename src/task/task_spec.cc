#include "task/task_spec.h"

#include <algorithm>
#include <regex>
#include <set>

#include "task/scope.h"
#include "util/json_decode.h"

namespace cdc {

using json = nlohmann::json;

namespace {

void DecodeCollectionInfo(JsonDecoder& d, const json& obj, const std::string& path, CollectionInfo* out) {
  if (!obj.is_object()) {
    d.AddError(path, "object", obj);
    return;
  }
  d.String(obj, "name", path + ".name", &out->name);
  d.Bool(obj, "use_start_position", path + ".use_start_position", &out->use_start_position);
  if (const json* pos = d.Object(obj, "positions", path + ".positions")) {
    std::map<std::string, std::string> positions;
    for (auto it = pos->begin(); it != pos->end(); ++it) {
      if (!it->is_string()) {
        d.AddError(path + ".positions." + it.key(), "string", *it);
        continue;
      }
      positions[it.key()] = it->get<std::string>();
    }
    out->positions = std::move(positions);
  }
}

std::vector<CollectionInfo> DecodeCollectionList(JsonDecoder& d, const json& arr, const std::string& path) {
  std::vector<CollectionInfo> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    CollectionInfo info;
    DecodeCollectionInfo(d, arr[i], path + "[" + std::to_string(i) + "]", &info);
    out.push_back(std::move(info));
  }
  return out;
}

json CollectionListToJson(const std::vector<CollectionInfo>& list) {
  json arr = json::array();
  for (const auto& c : list) {
    json positions = nullptr;
    if (c.positions) positions = *c.positions;
    arr.push_back({{"name", c.name}, {"positions", positions}, {"use_start_position", c.use_start_position}});
  }
  return arr;
}

// "[a b]", as the official server prints a list of names.
std::string NameList(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? " " : "") + names[i];
  return out + "]";
}

// Checks the collection list of database `db` (step 7 of the official validation). Several
// entries are allowed (the official server takes exactly one), but not twice the same name,
// nor `*` beside names it already covers.
Status ValidateCollectionList(const std::vector<CollectionInfo>& list, const std::string& db, int max_len) {
  if (list.empty()) return InvalidArgument("empty collection info");
  bool empty_name = false;
  bool has_star = false;
  std::vector<std::string> too_long;
  std::vector<std::string> named;
  std::vector<std::string> duplicates;
  std::set<std::string> seen;
  for (const auto& c : list) {
    if (c.name == "*" && c.positions && !c.positions->empty()) {
      return InvalidArgument("the collection name is `*`, the positions should be empty");
    }
    if (c.positions) {
      for (const auto& [channel, _] : *c.positions) {
        auto underscore = channel.rfind('_');
        if (underscore == std::string::npos || channel.find('v', underscore) == std::string::npos) {
          return InvalidArgument("the position channel name is not virtual channel, " + channel);
        }
      }
    }
    if (c.name.empty()) empty_name = true;
    if (static_cast<int>(c.name.size()) > max_len) too_long.push_back(c.name);
    if (c.name == "*") has_star = true;
    if (seen.insert(c.name).second) {
      if (c.name != "*" && !c.name.empty()) named.push_back(c.name);
    } else if (std::find(duplicates.begin(), duplicates.end(), c.name) == duplicates.end()) {
      duplicates.push_back(c.name);
    }
  }
  if (empty_name || !too_long.empty()) {
    std::string msg = empty_name ? "there is a collection name that is empty. " : "";
    if (!too_long.empty()) {
      msg += "there are some collection names whose length exceeds " + std::to_string(max_len) + " characters, " +
             NameList(too_long);
    }
    return InvalidArgument(msg);
  }
  if (has_star && !named.empty()) {
    return InvalidArgument("in the list of database " + db +
                           ", `*` already covers every collection, so these names are redundant: " + NameList(named));
  }
  if (!duplicates.empty()) {
    return InvalidArgument("there are duplicate collection names in the list of database " + db + ", " +
                           NameList(duplicates));
  }
  return Status::Ok();
}

// Initial positions of one entry: keys must be vchannels of one collection.
Status ValidatePositions(const CollectionInfo& c) {
  static const std::regex kVchannel(R"(^(.*)_(\d+)v(\d+)$)");
  if (!c.positions) return Status::Ok();
  std::string collection_id;
  for (const auto& [channel, _] : *c.positions) {
    std::smatch m;
    if (!std::regex_match(channel, m, kVchannel)) {
      return InvalidArgument("the vchannel is invalid, " + channel + ", err: it does not match <pchannel>_<id>v<shard>");
    }
    if (!collection_id.empty() && collection_id != m[2].str()) {
      return InvalidArgument("the channel position info should be in the same collection");
    }
    collection_id = m[2].str();
  }
  return Status::Ok();
}

}  // namespace

std::string MilvusConnectParam::EffectiveUri() const {
  if (!uri.empty()) return uri;
  if (host.rfind("http://", 0) == 0 || host.rfind("https://", 0) == 0) return host;
  return std::string(enable_tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

std::string MilvusConnectParam::EffectiveToken() const {
  if (!token.empty()) return token;
  if (!username.empty() && !password.empty()) return username + ":" + password;
  return "";
}

std::vector<std::string> TaskSpec::ScopeNames() const {
  std::vector<std::string> names;
  if (collection_infos) {
    for (const auto& c : *collection_infos) names.push_back("default." + c.name);
  }
  if (db_collections) {
    for (const auto& [db, list] : *db_collections) {
      for (const auto& c : list) names.push_back(db + "." + c.name);
    }
  }
  return names;
}

const CollectionInfo* TaskSpec::EntryFor(const std::string& db, const std::string& collection) const {
  const std::string name = db + "." + collection;
  if (std::find(skip_collections.begin(), skip_collections.end(), name) != skip_collections.end()) return nullptr;
  for (const auto& excluded : exclude_collections) {
    if (ScopeMatches(excluded, name)) return nullptr;
  }
  const std::vector<CollectionInfo>* list = nullptr;
  if (collection_infos && !collection_infos->empty()) {
    if (db == "default") list = &*collection_infos;
  } else if (db_collections) {
    auto it = db_collections->find(db);
    if (it == db_collections->end()) it = db_collections->find("*");
    if (it != db_collections->end()) list = &it->second;
  }
  if (!list) return nullptr;
  // A named entry wins over `*` (a list holds one or the other, but be exact anyway).
  const CollectionInfo* wildcard = nullptr;
  for (const auto& c : *list) {
    if (c.name == collection) return &c;
    if (c.name == "*") wildcard = &c;
  }
  return wildcard;
}

bool TaskSpec::CollectionInScope(const std::string& db, const std::string& collection) const {
  return EntryFor(db, collection) != nullptr;
}

StatusOr<TaskSpec> DecodeTaskSpec(const json& data) {
  TaskSpec s;
  if (data.is_null()) return s;
  JsonDecoder d;
  if (!data.is_object()) {
    d.AddError("request_data", "object", data);
    return InvalidArgument(d.ErrorText());
  }
  d.String(data, "task_id", "task_id", &s.task_id);
  if (const json* m = d.Object(data, "milvus_connect_param", "milvus_connect_param")) {
    const std::string p = "milvus_connect_param.";
    auto& mc = s.milvus;
    d.String(*m, "host", p + "host", &mc.host);
    d.Int(*m, "port", p + "port", &mc.port);
    d.Bool(*m, "enable_tls", p + "enable_tls", &mc.enable_tls);
    d.String(*m, "username", p + "username", &mc.username);
    d.String(*m, "password", p + "password", &mc.password);
    d.String(*m, "uri", p + "uri", &mc.uri);
    d.String(*m, "token", p + "token", &mc.token);
    d.Int(*m, "channel_num", p + "channel_num", &mc.channel_num);
    d.Bool(*m, "ignore_partition", p + "ignore_partition", &mc.ignore_partition);
    d.Int(*m, "connect_timeout", p + "connect_timeout", &mc.connect_timeout);
    d.String(*m, "write_mode", p + "write_mode", &mc.write_mode);
    if (const json* dc = d.Object(*m, "dial_config", p + "dial_config")) {
      const std::string q = p + "dial_config.";
      d.String(*dc, "server_name", q + "server_name", &mc.dial_config.server_name);
      d.String(*dc, "server_pem_path", q + "server_pem_path", &mc.dial_config.server_pem_path);
      d.String(*dc, "ca_pem_path", q + "ca_pem_path", &mc.dial_config.ca_pem_path);
      d.String(*dc, "client_pem_path", q + "client_pem_path", &mc.dial_config.client_pem_path);
      d.String(*dc, "client_key_path", q + "client_key_path", &mc.dial_config.client_key_path);
    }
  }
  if (const json* k = d.Object(data, "kafka_connect_param", "kafka_connect_param")) {
    const std::string p = "kafka_connect_param.";
    d.String(*k, "address", p + "address", &s.kafka.address);
    d.String(*k, "topic", p + "topic", &s.kafka.topic);
    d.Bool(*k, "enable_sasl", p + "enable_sasl", &s.kafka.enable_sasl);
    if (const json* sasl = d.Object(*k, "sasl", p + "sasl")) {
      d.String(*sasl, "username", p + "sasl.username", &s.kafka.sasl_username);
      d.String(*sasl, "password", p + "sasl.password", &s.kafka.sasl_password);
      d.String(*sasl, "mechanisms", p + "sasl.mechanisms", &s.kafka.sasl_mechanisms);
      d.String(*sasl, "security_protocol", p + "sasl.security_protocol", &s.kafka.sasl_security_protocol);
    }
  }
  if (const json* arr = d.Array(data, "collection_infos", "collection_infos")) {
    s.collection_infos = DecodeCollectionList(d, *arr, "collection_infos");
  }
  if (const json* dbs = d.Object(data, "db_collections", "db_collections")) {
    std::map<std::string, std::vector<CollectionInfo>> out;
    for (auto it = dbs->begin(); it != dbs->end(); ++it) {
      const std::string path = "db_collections." + it.key();
      if (it->is_null()) {
        out[it.key()] = {};
      } else if (!it->is_array()) {
        d.AddError(path, "array", *it);
      } else {
        out[it.key()] = DecodeCollectionList(d, *it, path);
      }
    }
    s.db_collections = std::move(out);
  }
  if (const json* rpc = d.Object(data, "rpc_channel_info", "rpc_channel_info")) {
    d.String(*rpc, "name", "rpc_channel_info.name", &s.rpc_channel_name);
    d.String(*rpc, "position", "rpc_channel_info.position", &s.rpc_channel_position);
  }
  if (const json* extra = d.Object(data, "extra_info", "extra_info")) {
    d.Bool(*extra, "enable_user_role", "extra_info.enable_user_role", &s.enable_user_role);
  }
  if (const json* buf = d.Object(data, "buffer_config", "buffer_config")) {
    d.Int(*buf, "period", "buffer_config.period", &s.buffer_period);
    d.Int(*buf, "size", "buffer_config.size", &s.buffer_size);
  }
  if (const json* arr = d.Array(data, "name_mapping", "name_mapping")) {
    for (size_t i = 0; i < arr->size(); ++i) {
      const json& item = (*arr)[i];
      const std::string p = "name_mapping[" + std::to_string(i) + "]";
      if (!item.is_object()) {
        d.AddError(p, "object", item);
        continue;
      }
      NameMapping nm;
      d.String(item, "source_db", p + ".source_db", &nm.source_db);
      d.String(item, "target_db", p + ".target_db", &nm.target_db);
      if (const json* cm = d.Object(item, "collection_mapping", p + ".collection_mapping")) {
        for (auto it = cm->begin(); it != cm->end(); ++it) {
          if (!it->is_string()) {
            d.AddError(p + ".collection_mapping." + it.key(), "string", *it);
          } else {
            nm.collection_mapping[it.key()] = it->get<std::string>();
          }
        }
      }
      s.name_mapping.push_back(std::move(nm));
    }
  }
  d.Bool(data, "disable_auto_start", "disable_auto_start", &s.disable_auto_start);
  d.Bool(data, "backfill", "backfill", &s.backfill);
  if (const json* users = d.Object(data, "user_passwords", "user_passwords")) {
    for (auto it = users->begin(); it != users->end(); ++it) {
      if (!it->is_string()) {
        d.AddError("user_passwords." + it.key(), "string", *it);
      } else {
        s.user_passwords[it.key()] = it->get<std::string>();
      }
    }
  }
  // Server-set lists, read back from the stored spec (the API clears them on create).
  if (const json* ex = d.Array(data, "exclude_collections", "exclude_collections")) {
    for (const auto& e : *ex) {
      if (e.is_string()) s.exclude_collections.push_back(e.get<std::string>());
    }
  }
  if (const json* skip = d.Array(data, "skip_collections", "skip_collections")) {
    for (const auto& e : *skip) {
      if (e.is_string()) s.skip_collections.push_back(e.get<std::string>());
    }
  }
  if (!d.ok()) return InvalidArgument(d.ErrorText());
  return s;
}

Status ValidateSpec(const TaskSpec& s, const SpecLimits& limits) {
  // 1. Target choice.
  if (s.milvus.Empty() && s.kafka.address.empty()) return InvalidArgument("the downstream address is empty");
  if (!s.milvus.Empty() && !s.kafka.address.empty()) {
    return InvalidArgument("don't support milvus and kafka at the same time now");
  }
  // 2. Milvus parameters.
  if (!s.milvus.Empty()) {
    if (s.milvus.uri.empty()) {
      if (s.milvus.host.empty()) return InvalidArgument("the milvus host is empty");
      if (s.milvus.port <= 0) return InvalidArgument("the milvus port is less or equal zero");
    }
    if (s.milvus.username.empty() != s.milvus.password.empty()) {
      return InvalidArgument("cannot set only one of the milvus username and password");
    }
    if (s.milvus.connect_timeout < 0) return InvalidArgument("the milvus connect timeout is less zero");
    const std::string& mode = s.milvus.write_mode;
    if (mode != "auto" && mode != "api" && mode != "replicate") {
      return InvalidArgument("milvus_connect_param.write_mode must be \"auto\", \"api\" or \"replicate\"");
    }
  }
  // 3. Kafka: the official server accepts a Kafka target; this one does not write to Kafka.
  if (!s.kafka.address.empty()) {
    if (s.kafka.topic.empty()) return InvalidArgument("the kafka topic is empty");
    return InvalidArgument("a kafka target is not supported by this server; set milvus_connect_param");
  }
  // 4. Buffer.
  if (s.buffer_period < 0) return InvalidArgument("the cache period is less zero");
  if (s.buffer_size < 0) return InvalidArgument("the cache size is less zero");
  // 5. Scope count. Several collections, and several databases, are allowed (the official
  // server takes exactly one); the two forms together are not.
  const bool has_infos = s.collection_infos && !s.collection_infos->empty();
  const bool has_dbs = s.db_collections && !s.db_collections->empty();
  if (!has_infos && !has_dbs) return InvalidArgument("the collection info is empty");
  if (has_infos && has_dbs) {
    return InvalidArgument("the collection info and db collection info should be only one");
  }
  // 6 and 7. Names.
  if (has_dbs) {
    for (const auto& [db, list] : *s.db_collections) {
      if (static_cast<int>(db.size()) > limits.max_name_length) {
        return InvalidArgument("the db name length exceeds " + std::to_string(limits.max_name_length) +
                               " characters, " + db);
      }
      if (db.empty()) return InvalidArgument("the db name is empty");
      RETURN_IF_ERROR(ValidateCollectionList(list, db, limits.max_name_length));
    }
  } else {
    RETURN_IF_ERROR(ValidateCollectionList(*s.collection_infos, "default", limits.max_name_length));
  }
  // 8. Replicate channel.
  if (!s.rpc_channel_name.empty() && s.rpc_channel_name != limits.replicate_chan) {
    return InvalidArgument("the rpc channel is invalid, the channel name should be the same as the source config");
  }
  // Initial positions, per entry: each names its own collection.
  if (has_dbs) {
    for (const auto& [db, list] : *s.db_collections) {
      for (const auto& c : list) RETURN_IF_ERROR(ValidatePositions(c));
    }
  } else {
    for (const auto& c : *s.collection_infos) RETURN_IF_ERROR(ValidatePositions(c));
  }
  // Client-chosen ids become store keys: keep them plain.
  static const std::regex kTaskId(R"(^[A-Za-z0-9_.\-]{1,128}$)");
  if (!s.task_id.empty() && !std::regex_match(s.task_id, kTaskId)) {
    return InvalidArgument("the task_id must be 1 to 128 characters of letters, digits, '_', '-' or '.'");
  }
  // Name mapping targets must be names too.
  for (const auto& nm : s.name_mapping) {
    if (nm.source_db.empty()) return InvalidArgument("the source_db of a name mapping is empty");
    if (static_cast<int>(nm.target_db.size()) > limits.max_name_length) {
      return InvalidArgument("the db name length exceeds " + std::to_string(limits.max_name_length) +
                             " characters, " + nm.target_db);
    }
  }
  // Initial passwords are for the users enable_user_role copies; without it they would be ignored.
  if (!s.user_passwords.empty()) {
    if (!s.enable_user_role) {
      return InvalidArgument("user_passwords is only used with extra_info.enable_user_role: true; "
                             "set it or remove user_passwords");
    }
    for (const auto& [user, password] : s.user_passwords) {
      if (user.empty()) return InvalidArgument("user_passwords has an empty user name");
      if (password.empty()) return InvalidArgument("user_passwords has an empty password for user " + user);
    }
  }
  return Status::Ok();
}

json SpecToJson(const TaskSpec& s) {
  json j = SpecToTaskObject(s);
  j.erase("task_id");
  if (!s.exclude_collections.empty()) j["exclude_collections"] = s.exclude_collections;
  if (!s.skip_collections.empty()) j["skip_collections"] = s.skip_collections;
  return j;
}

std::string SecretsToJson(const TaskSpec& s) {
  json j = json::object();
  if (!s.milvus.username.empty()) j["username"] = s.milvus.username;
  if (!s.milvus.password.empty()) j["password"] = s.milvus.password;
  if (!s.milvus.token.empty()) j["token"] = s.milvus.token;
  if (!s.kafka.sasl_username.empty()) j["sasl_username"] = s.kafka.sasl_username;
  if (!s.kafka.sasl_password.empty()) j["sasl_password"] = s.kafka.sasl_password;
  if (!s.user_passwords.empty()) j["user_passwords"] = s.user_passwords;
  return j.empty() ? "" : j.dump();
}

StatusOr<TaskSpec> SpecFromStored(const std::string& spec_json, const std::string& secrets_json) {
  json spec = json::parse(spec_json, nullptr, /*allow_exceptions=*/false);
  if (spec.is_discarded()) return Internal("stored task spec is not valid JSON");
  auto decoded = DecodeTaskSpec(spec);
  if (!decoded.ok()) return decoded.status().WithContext("stored task spec");
  TaskSpec s = std::move(decoded).value();
  if (!secrets_json.empty()) {
    json sec = json::parse(secrets_json, nullptr, false);
    if (sec.is_discarded() || !sec.is_object()) return Internal("stored task credentials are not valid JSON");
    for (auto it = sec.begin(); it != sec.end(); ++it) {
      if (it.key() == "user_passwords") {
        if (!it->is_object()) return Internal("stored task user_passwords is not an object");
        for (auto u = it->begin(); u != it->end(); ++u) {
          if (!u->is_string()) return Internal("stored task password of user '" + u.key() + "' is not a string");
          s.user_passwords[u.key()] = u->get<std::string>();
        }
      } else if (!it->is_string()) {
        return Internal("stored task credential '" + it.key() + "' is not a string");
      }
    }
    auto get = [&](const char* key) { return sec.contains(key) ? sec[key].get<std::string>() : std::string(); };
    s.milvus.username = get("username");
    s.milvus.password = get("password");
    s.milvus.token = get("token");
    s.kafka.sasl_username = get("sasl_username");
    s.kafka.sasl_password = get("sasl_password");
  }
  return s;
}

json SpecToTaskObject(const TaskSpec& s) {
  const auto& m = s.milvus;
  json dial = json::object();
  if (!m.dial_config.server_name.empty()) dial["server_name"] = m.dial_config.server_name;
  if (!m.dial_config.server_pem_path.empty()) dial["server_pem_path"] = m.dial_config.server_pem_path;
  if (!m.dial_config.ca_pem_path.empty()) dial["ca_pem_path"] = m.dial_config.ca_pem_path;
  if (!m.dial_config.client_pem_path.empty()) dial["client_pem_path"] = m.dial_config.client_pem_path;
  if (!m.dial_config.client_key_path.empty()) dial["client_key_path"] = m.dial_config.client_key_path;
  json sasl = json::object();
  if (!s.kafka.sasl_mechanisms.empty()) sasl["mechanisms"] = s.kafka.sasl_mechanisms;
  if (!s.kafka.sasl_security_protocol.empty()) sasl["security_protocol"] = s.kafka.sasl_security_protocol;

  json j = {
      {"task_id", s.task_id},
      {"milvus_connect_param",
       {{"host", m.host}, {"port", m.port}, {"enable_tls", m.enable_tls}, {"uri", m.uri}, {"dial_config", dial},
        {"channel_num", m.channel_num}, {"ignore_partition", m.ignore_partition},
        {"connect_timeout", m.connect_timeout}, {"write_mode", m.write_mode}}},
      {"kafka_connect_param",
       {{"address", s.kafka.address}, {"topic", s.kafka.topic}, {"enable_sasl", s.kafka.enable_sasl},
        {"sasl", sasl}}},
      {"collection_infos", s.collection_infos ? CollectionListToJson(*s.collection_infos) : json(nullptr)},
      {"db_collections", nullptr},
      {"rpc_channel_info", {{"name", s.rpc_channel_name}, {"position", s.rpc_channel_position}}},
      {"extra_info", {{"enable_user_role", s.enable_user_role}}},
      {"buffer_config", {{"period", s.buffer_period}, {"size", s.buffer_size}}},
      {"disable_auto_start", s.disable_auto_start},
      {"backfill", s.backfill},
  };
  if (s.db_collections) {
    json dbs = json::object();
    for (const auto& [db, list] : *s.db_collections) dbs[db] = CollectionListToJson(list);
    j["db_collections"] = dbs;
  }
  json mapping = json::array();
  for (const auto& nm : s.name_mapping) {
    mapping.push_back({{"source_db", nm.source_db}, {"target_db", nm.target_db},
                       {"collection_mapping", nm.collection_mapping}});
  }
  j["name_mapping"] = mapping;
  return j;
}

}  // namespace cdc
