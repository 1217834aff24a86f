#include "store/etcd_meta_store.h"

#include <algorithm>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

namespace cdc {

namespace {

using json = nlohmann::json;

// etcd's default --max-txn-ops: more positions than this are written in several transactions.
constexpr size_t kMaxTxnOps = 128;

// Any etcd failure is "the store is unavailable"; the client's message already names etcd, the
// operation, the key and the endpoint.
Status StoreError(const Status& st) {
  if (st.ok()) return st;
  return Unavailable("task store: " + st.message());
}

Status CheckTaskId(const std::string& task_id) {
  if (task_id.empty()) return InvalidArgument("task store: empty task id");
  if (task_id.find('/') != std::string::npos) {
    return InvalidArgument("task store: task id '" + task_id + "' must not contain '/' (it is part of etcd keys)");
  }
  return Status::Ok();
}

// Serializes without throwing; text that is not valid UTF-8 is an error naming `what`.
StatusOr<std::string> Dump(const json& j, const std::string& what) {
  try {
    return j.dump();
  } catch (const json::exception& e) {
    return InvalidArgument("task store: cannot encode " + what + " as JSON: " + e.what());
  }
}

bool ReadString(const json& obj, const char* key, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

bool ReadInt(const json& obj, const char* key, int64_t* out) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return false;
  *out = it->get<int64_t>();
  return true;
}

Status Corrupt(const std::string& key, const std::string& why) {
  return Internal("task store: invalid record at etcd key '" + key + "': " + why);
}

}  // namespace

StatusOr<std::unique_ptr<EtcdMetaStore>> EtcdMetaStore::Open(const source::EtcdOptions& options,
                                                             const std::string& root_path, SecretBox secrets) {
  auto client = source::EtcdClient::Connect(options);
  if (!client.ok()) return client.status().WithContext("etcd task store");
  std::shared_ptr<source::EtcdClient> shared(std::move(client).value());
  return std::make_unique<EtcdMetaStore>(std::move(shared), root_path, std::move(secrets));
}

EtcdMetaStore::EtcdMetaStore(std::shared_ptr<source::EtcdClient> client, std::string root_path, SecretBox secrets)
    : client_(std::move(client)),
      root_([&] {
        while (!root_path.empty() && root_path.back() == '/') root_path.pop_back();
        return root_path;
      }()),
      secrets_(std::move(secrets)) {}

std::string EtcdMetaStore::TaskKey(const std::string& task_id) const { return root_ + "/task_info/" + task_id; }

std::string EtcdMetaStore::PositionPrefix(const std::string& task_id) const {
  return root_ + "/task_position/" + task_id + "/";
}

Status EtcdMetaStore::PutTask(const TaskRecord& task) {
  RETURN_IF_ERROR(CheckTaskId(task.task_id));
  ASSIGN_OR_RETURN(std::string sealed, secrets_.Seal(task.secrets_json));
  const std::string key = TaskKey(task.task_id);
  std::lock_guard<std::mutex> lock(mu_);
  // Replacing keeps the first create_time_ms, so the listing order never changes.
  int64_t create_time_ms = task.create_time_ms;
  auto existing = client_->Get(key);
  if (!existing.ok()) return StoreError(existing.status());
  if (existing->has_value()) {
    json old = json::parse((*existing)->value, nullptr, false);
    int64_t t = 0;
    if (old.is_object() && ReadInt(old, "create_time_ms", &t)) create_time_ms = t;
  }
  json j = {{"task_id", task.task_id},
            {"state", static_cast<int>(task.state)},
            {"reason", task.reason},
            {"spec", task.spec_json},
            {"sealed_secrets", sealed},
            {"create_time_ms", create_time_ms},
            {"failed_change", task.failed_change_json}};
  ASSIGN_OR_RETURN(std::string value, Dump(j, "task " + task.task_id));
  return StoreError(client_->Put(key, value));
}

StatusOr<TaskRecord> EtcdMetaStore::DecodeTask(const source::EtcdKv& kv) const {
  json j = json::parse(kv.value, nullptr, false);
  if (!j.is_object()) return Corrupt(kv.key, "not a JSON object");
  TaskRecord r;
  int64_t state = 0;
  std::string sealed;
  if (!ReadString(j, "task_id", &r.task_id) || !ReadInt(j, "state", &state) || !ReadString(j, "reason", &r.reason) ||
      !ReadString(j, "spec", &r.spec_json) || !ReadString(j, "sealed_secrets", &sealed) ||
      !ReadInt(j, "create_time_ms", &r.create_time_ms)) {
    return Corrupt(kv.key, "a field of task_id, state, reason, spec, sealed_secrets, create_time_ms is missing "
                           "or has the wrong type");
  }
  if (state < 0 || state > 2) return Internal("task store holds an invalid state for task " + r.task_id);
  r.state = static_cast<TaskState>(state);
  // Absent in records written before it existed.
  if (j.contains("failed_change") && !ReadString(j, "failed_change", &r.failed_change_json)) {
    return Corrupt(kv.key, "failed_change is not a string");
  }
  auto opened = secrets_.Open(sealed);
  if (!opened.ok()) return opened.status().WithContext("task " + r.task_id + " credentials");
  r.secrets_json = std::move(opened).value();
  return r;
}

StatusOr<std::optional<TaskRecord>> EtcdMetaStore::GetTask(const std::string& task_id) {
  if (!CheckTaskId(task_id).ok()) return std::optional<TaskRecord>();  // no such key can exist
  auto kv = client_->Get(TaskKey(task_id));
  if (!kv.ok()) return StoreError(kv.status());
  if (!kv->has_value()) return std::optional<TaskRecord>();
  ASSIGN_OR_RETURN(TaskRecord r, DecodeTask(**kv));
  return std::optional<TaskRecord>(std::move(r));
}

StatusOr<std::vector<TaskRecord>> EtcdMetaStore::ListTasks() {
  auto kvs = client_->GetPrefix(root_ + "/task_info/");
  if (!kvs.ok()) return StoreError(kvs.status());
  std::vector<TaskRecord> out;
  out.reserve(kvs->size());
  for (const auto& kv : *kvs) {
    ASSIGN_OR_RETURN(TaskRecord r, DecodeTask(kv));
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const TaskRecord& a, const TaskRecord& b) {
    return std::tie(a.create_time_ms, a.task_id) < std::tie(b.create_time_ms, b.task_id);
  });
  return out;
}

Status EtcdMetaStore::DeleteTask(const std::string& task_id) {
  Status not_found = NotFound("not found the task, task_id: " + task_id);
  if (!CheckTaskId(task_id).ok()) return not_found;
  const std::string key = TaskKey(task_id);
  // The check first keeps the positions of an unknown task untouched (as the SQLite store's
  // rollback does); the transaction's own count settles a race with another delete.
  auto kv = client_->Get(key);
  if (!kv.ok()) return StoreError(kv.status());
  if (!kv->has_value()) return not_found;
  std::vector<int64_t> deleted;
  RETURN_IF_ERROR(StoreError(client_->Txn({{source::EtcdOp::Type::kDelete, key, ""},
                                           {source::EtcdOp::Type::kDeletePrefix, PositionPrefix(task_id), ""}},
                                          &deleted)));
  if (deleted.empty() || deleted[0] == 0) return not_found;
  return Status::Ok();
}

Status EtcdMetaStore::PutPositions(const std::string& task_id, const std::vector<ChannelPosition>& positions) {
  RETURN_IF_ERROR(CheckTaskId(task_id));
  // etcd rejects two puts of one key in a transaction; the last position of a channel wins.
  std::map<std::string, std::string> values;
  for (const auto& p : positions) {
    json j = {{"collection_id", p.collection_id}, {"channel", p.channel}, {"data", Base64Encode(p.data)}};
    ASSIGN_OR_RETURN(std::string value, Dump(j, "position of channel " + p.channel));
    values[PositionPrefix(task_id) + std::to_string(p.collection_id) + "/" + p.channel] = std::move(value);
  }
  std::vector<source::EtcdOp> ops;
  for (auto& [key, value] : values) {
    ops.push_back({source::EtcdOp::Type::kPut, key, std::move(value)});
    if (ops.size() == kMaxTxnOps) {
      RETURN_IF_ERROR(StoreError(client_->Txn(ops)));
      ops.clear();
    }
  }
  return StoreError(client_->Txn(ops));
}

StatusOr<std::vector<ChannelPosition>> EtcdMetaStore::GetPositions(const std::string& task_id) {
  if (!CheckTaskId(task_id).ok()) return std::vector<ChannelPosition>();
  auto kvs = client_->GetPrefix(PositionPrefix(task_id));
  if (!kvs.ok()) return StoreError(kvs.status());
  std::vector<ChannelPosition> out;
  out.reserve(kvs->size());
  for (const auto& kv : *kvs) {
    json j = json::parse(kv.value, nullptr, false);
    ChannelPosition p;
    std::string data;
    if (!j.is_object() || !ReadInt(j, "collection_id", &p.collection_id) || !ReadString(j, "channel", &p.channel) ||
        !ReadString(j, "data", &data)) {
      return Corrupt(kv.key, "expected {\"collection_id\": int, \"channel\": string, \"data\": base64 string}");
    }
    auto raw = Base64Decode(data);
    if (!raw.ok()) return Corrupt(kv.key, "data is not base64: " + raw.status().message());
    p.data = std::move(raw).value();
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), [](const ChannelPosition& a, const ChannelPosition& b) {
    return std::tie(a.collection_id, a.channel) < std::tie(b.collection_id, b.channel);
  });
  return out;
}

}  // namespace cdc
