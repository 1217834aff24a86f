#include "api/cdc_service.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "msg.pb.h"
#include "util/json_decode.h"
#include "util/secret_box.h"
#include "util/log.h"

namespace cdc {

using json = nlohmann::json;

namespace {

const char* kTypes[] = {"backfill", "create", "delete", "get", "list", "maintenance", "pause", "position", "resume",
                        "skip", "verify"};

// `verify` waits this long for the run by default; at most kMaxVerifyWaitS, below the server's
// 30 s HTTP timeout, so a longer run answers "running" and `get` shows the rest.
constexpr double kDefaultVerifyWaitS = 20;
constexpr double kMaxVerifyWaitS = 25;

bool IsClientError(const Status& st) {
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
      return true;
    default:
      return false;
  }
}

CdcReply Ok(json data = nullptr) {
  CdcReply r;
  r.body = {{"code", 200}};
  if (!data.is_null()) r.body["data"] = std::move(data);
  return r;
}

CdcReply Fail(int code, const std::string& message) {
  CdcReply r;
  r.body = CdcService::ErrorBody(code, message);
  return r;
}

CdcReply HandlerError(const std::string& type, const Status& st) {
  return Fail(IsClientError(st) ? 400 : 500, "fail to handle the " + type + " request, error: " + st.message());
}

// Request data with every credential blanked, for the request log.
json Redacted(json data) {
  if (!data.is_object()) return data;
  for (auto it = data.begin(); it != data.end(); ++it) {
    std::string key = it.key();
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    if (key == "user_passwords") {  // user names stay readable, passwords do not
      if (!it->is_object()) {
        *it = "***";
        continue;
      }
      for (auto& password : *it) password = "***";
      continue;
    }
    if (it->is_object()) {
      *it = Redacted(*it);
      continue;
    }
    if (key == "token" || key == "password" || key == "username") *it = "***";
  }
  return data;
}

// The source change that paused a task, as get shows it.
json FailedChangeObject(const FailedChange& c) {
  return {{"db", c.db},           {"collection", c.collection}, {"operation", c.operation},
          {"position", c.position}, {"message", c.message},       {"time", c.time_ms}};
}

// One stored checkpoint as the official `position` reply shows it; null for records
// that are not checkpoints (write-ahead intents).
json PositionEntry(const ChannelPosition& p, const std::function<std::string(int64_t)>& msg_id_of_offset) {
  if (p.collection_id < -10) return nullptr;
  auto data = json::parse(p.data, nullptr, false);
  if (data.is_discarded() || !data.is_object()) return nullptr;
  const int64_t offset = data.value("offset", int64_t{-1});
  const uint64_t ts = data.value("ts", uint64_t{0});
  std::string msg_id(8, '\0');
  if (msg_id_of_offset) {
    msg_id = msg_id_of_offset(offset);
  } else {
    for (int i = 0; i < 8; ++i) msg_id[i] = static_cast<char>((static_cast<uint64_t>(offset) >> (8 * i)) & 0xff);
  }
  milvus::proto::msg::MsgPosition position;
  position.set_channel_name(p.channel);
  position.set_msgid(msg_id);
  position.set_timestamp(ts);
  return {{"collection_id", p.collection_id}, {"channel_name", p.channel}, {"time", ts >> 18},
          {"tt", ((ts >> 18) + 1) << 18}, {"msg_id", Base64Encode(position.SerializeAsString())}, {"offset", offset}};
}

// One entry per source channel: its checkpoint (offset, hybrid ts, physical ms), lag and error.
json BackfillObject(const std::vector<BackfillProgress>& list) {
  json out = json::array();
  for (const auto& b : list) {
    json o = {{"db", b.db},
              {"name", b.name},
              {"state", b.state},
              {"rows_copied", b.rows_copied},
              {"rows_estimated", b.rows_estimated},
              {"rows_per_s", static_cast<int64_t>(b.rows_per_s)}};
    if (!b.reason.empty()) o["reason"] = b.reason;
    out.push_back(std::move(o));
  }
  return out;
}

json ProgressObject(const PipelineProgress& p) {
  json list = json::array();
  for (const auto& c : p.channels) {
    json entry = {{"channel_name", c.channel},
                  {"kind", c.replicate ? "replicate" : "dml"},
                  {"checkpoint", {{"offset", c.offset}, {"ts", c.ts}, {"time", c.ts >> 18}}},
                  {"lag_ms", c.lag_ms < 0 ? json(nullptr) : json(c.lag_ms)}};
    if (!c.error.empty()) entry["error"] = c.error;
    list.push_back(std::move(entry));
  }
  return list;
}

}  // namespace

std::string CdcService::MetricsText() {
  tasks_->RefreshLagMetrics();
  return metrics_->Render();
}

CdcService::CdcService(TaskManager* tasks, Metrics* metrics) : tasks_(tasks), metrics_(metrics) {
  metrics_->Describe("milvus_cdc_request_total", Metrics::Type::kCounter, "HTTP requests by type and status");
  metrics_->Describe("milvus_cdc_request_latency", Metrics::Type::kHistogram,
                     "Latency in milliseconds of successful requests", {1, 2, 4, 8, 16, 32, 64, 128});
}

json CdcService::ErrorBody(int code, const std::string& message) { return {{"code", code}, {"message", message}}; }

CdcReply CdcService::Handle(const std::string& method, const std::string& body) {
  if (method != "POST") {
    metrics_->Add("milvus_cdc_request_total", {{"request_type", "unknown"}, {"request_status", "invalid_method"}});
    return Fail(405, "only support the POST method");
  }
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    metrics_->Add("milvus_cdc_request_total", {{"request_type", "unknown"}, {"request_status", "read_error"}});
    return Fail(400, "the request body is empty, expected {\"request_type\": ..., \"request_data\": {...}}");
  }
  json req = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded()) {
    std::string why;
    try {
      json ignored = json::parse(body);
      (void)ignored;
    } catch (const json::parse_error& e) {
      why = e.what();
    }
    metrics_->Add("milvus_cdc_request_total", {{"request_type", "unknown"}, {"request_status", "unmarshal_error"}});
    return Fail(400, "fail to unmarshal the request, error: " + why);
  }
  if (!req.is_object()) {
    metrics_->Add("milvus_cdc_request_total", {{"request_type", "unknown"}, {"request_status", "unmarshal_error"}});
    return Fail(400, "fail to unmarshal the request, error: the body must be a JSON object, got " +
                         JsonDecoder::TypeName(req));
  }
  JsonDecoder d;
  std::string type;
  d.String(req, "request_type", "request_type", &type);
  const json* data = JsonDecoder::Find(req, "request_data");
  if (data && !data->is_object()) d.AddError("request_data", "object", *data);
  if (!d.ok()) {
    metrics_->Add("milvus_cdc_request_total", {{"request_type", "unknown"}, {"request_status", "unmarshal_error"}});
    return Fail(400, "fail to unmarshal the request, error: " + d.ErrorText());
  }
  const json empty = json::object();
  const json& request_data = data ? *data : empty;

  auto started = std::chrono::steady_clock::now();
  metrics_->Add("milvus_cdc_request_total", {{"request_type", type}, {"request_status", "total"}});
  GetLogger("api")->info("request {} {}", type, Redacted(request_data).dump());
  CdcReply reply = HandleType(type, request_data);
  if (reply.body.value("code", 0) == 200) {
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    metrics_->Add("milvus_cdc_request_total", {{"request_type", type}, {"request_status", "success"}});
    metrics_->Observe("milvus_cdc_request_latency", {{"request_type", type}}, ms);
  } else {
    GetLogger("api")->info("request {} failed: {}", type, reply.body.value("message", ""));
  }
  return reply;
}

CdcReply CdcService::HandleType(const std::string& type, const json& data) {
  JsonDecoder d;
  auto decode_error = [&]() { return Fail(400, "fail to decode the " + type + " request, error: " + d.ErrorText()); };

  if (type == "create") {
    auto spec = DecodeTaskSpec(data);
    if (!spec.ok()) return Fail(400, "fail to decode the create request, error: " + spec.status().message());
    spec->exclude_collections.clear();  // server-owned
    spec->skip_collections.clear();
    auto id = tasks_->Create(std::move(spec).value());
    if (!id.ok()) return HandlerError(type, id.status());
    return Ok({{"task_id", *id}});
  }
  if (type == "list") {
    json tasks = json::array();
    for (const auto& view : tasks_->List()) tasks.push_back(TaskObject(view));
    return Ok({{"tasks", tasks}});
  }
  if (type == "maintenance") return Ok(Maintenance(data));

  std::string task_id;
  d.String(data, "task_id", "task_id", &task_id);
  if (type == "delete") {
    bool ignore_not_found = false;
    d.Bool(data, "ignore_not_found", "ignore_not_found", &ignore_not_found);
    if (!d.ok()) return decode_error();
    Status st = tasks_->Delete(task_id, ignore_not_found);
    return st.ok() ? Ok() : HandlerError(type, st);
  }
  if (!d.ok()) return decode_error();
  if (type == "pause" || type == "resume") {
    Status st = type == "pause" ? tasks_->Pause(task_id) : tasks_->Resume(task_id);
    return st.ok() ? Ok() : HandlerError(type, st);
  }
  if (type == "get") {
    auto view = tasks_->Get(task_id);
    if (!view.ok()) return HandlerError(type, view.status());
    json task = TaskObject(*view);
    task["channels"] = ProgressObject(view->progress);
    if (!view->progress.last_error.empty()) {
      task["last_error"] = {{"message", view->progress.last_error}, {"time", view->progress.last_error_ms}};
    }
    if (view->failed_change) task["failed_change"] = FailedChangeObject(*view->failed_change);
    if (!view->progress.missing_users.empty()) task["missing_users"] = view->progress.missing_users;
    if (!view->progress.backfill.empty()) task["backfill_progress"] = BackfillObject(view->progress.backfill);
    if (!view->verify.is_null()) task["verify"] = view->verify;
    return Ok({{"task", task}, {"Task", task}});
  }
  if (type == "backfill") {
    std::vector<std::pair<std::string, std::string>> collections;
    if (const json* list = d.Array(data, "collections", "collections")) {
      for (size_t i = 0; i < list->size(); ++i) {
        const std::string path = "collections[" + std::to_string(i) + "]";
        if (!(*list)[i].is_object()) {
          d.AddError(path, "object", (*list)[i]);
          continue;
        }
        std::string db = "default";
        std::string name;
        d.String((*list)[i], "db", path + ".db", &db);
        d.String((*list)[i], "name", path + ".name", &name);
        if (name.empty() && d.ok()) return Fail(400, path + ".name is empty: name the collection to copy");
        collections.emplace_back(db.empty() ? "default" : db, name);
      }
    }
    if (!d.ok()) return decode_error();
    Status st = tasks_->Backfill(task_id, collections);
    return st.ok() ? Ok() : HandlerError(type, st);
  }
  if (type == "verify") return Verify(data, task_id);
  if (type == "skip") {
    std::string db;
    std::string collection;
    d.String(data, "db_name", "db_name", &db);
    d.String(data, "collection_name", "collection_name", &collection);
    if (!d.ok()) return decode_error();
    Status st = tasks_->Skip(task_id, db, collection);
    return st.ok() ? Ok() : HandlerError(type, st);
  }
  if (type == "position") {
    auto positions = tasks_->Positions(task_id);
    if (!positions.ok()) return HandlerError(type, positions.status());
    json list = nullptr;
    for (const auto& p : *positions) {
      json entry = PositionEntry(p, msg_id_of_offset_);
      if (entry.is_null()) continue;
      if (list.is_null()) list = json::array();
      list.push_back(std::move(entry));
    }
    return Ok({{"positions", list}, {"op_positions", list}, {"target_positions", nullptr}});
  }
  std::string names;
  for (const char* t : kTypes) names += (names.empty() ? "" : " ") + std::string(t);
  return Fail(400, "invalid 'request_type' param, can be set [" + names + "]");
}

CdcReply CdcService::Verify(const json& data, const std::string& task_id) {
  JsonDecoder d;
  VerifyOptions options;
  d.String(data, "level", "level", &options.level);
  d.Bool(data, "repair", "repair", &options.repair);
  if (const json* list = d.Array(data, "collections", "collections")) {
    for (size_t i = 0; i < list->size(); ++i) {
      const json& entry = (*list)[i];
      const std::string path = "collections[" + std::to_string(i) + "]";
      if (!entry.is_object()) {
        d.AddError(path, "object", entry);
        continue;
      }
      std::string db;
      std::string name;
      d.String(entry, "db", path + ".db", &db);
      d.String(entry, "name", path + ".name", &name);
      options.collections.emplace_back(db, name);
    }
  }
  double wait_s = kDefaultVerifyWaitS;
  if (const json* w = JsonDecoder::Find(data, "wait_s")) {
    if (w->is_number()) {
      wait_s = w->get<double>();
    } else {
      d.AddError("wait_s", "number", *w);
    }
  }
  if (!d.ok()) return Fail(400, "fail to decode the verify request, error: " + d.ErrorText());
  if (!(wait_s >= 0 && wait_s <= kMaxVerifyWaitS)) {
    return Fail(400, "fail to decode the verify request, error: wait_s must be between 0 and 25 seconds (the "
                     "HTTP timeout is 30 s; `get` shows a longer run), got " + json(wait_s).dump());
  }
  auto report = tasks_->Verify(task_id, options, std::chrono::milliseconds(static_cast<int64_t>(wait_s * 1000)));
  if (!report.ok()) return HandlerError("verify", report.status());
  return Ok({{"verify", *report}});
}

json CdcService::Maintenance(const json& data) {
  JsonDecoder d;
  std::string op;
  d.String(data, "operation", "operation", &op);
  const json* params = JsonDecoder::Find(data, "params");
  const json empty = json::object();
  const json& p = params && params->is_object() ? *params : empty;
  if (!d.ok()) return {{"State", "parse request failed: " + d.ErrorText()}};
  if (op == "set_log_level") {
    std::string level;
    d.String(p, "log_level", "params.log_level", &level);
    if (!d.ok()) return {{"State", "parse log level failed: " + d.ErrorText()}};
    if (level.empty()) return {{"State", "log_level is required"}};
    if (!SetLogLevel(level)) return {{"State", "parse log level failed: unknown level '" + level + "'"}};
    return {{"State", "set log level to " + level}};
  }
  if (op == "set_force_log_msg") {
    bool force = false;
    d.Bool(p, "force", "params.force", &force);
    if (!d.ok()) return {{"State", "parse force failed: " + d.ErrorText()}};
    return {{"State", std::string("set force log msg to ") + (force ? "true" : "false")}};
  }
  if (op == "reset_log_msg") {
    int64_t count = 0;
    int64_t duration = 0;
    d.Int(p, "count", "params.count", &count);
    d.Int(p, "duration", "params.duration", &duration);
    if (!d.ok()) return {{"State", "parse params failed: " + d.ErrorText()}};
    return {{"State", "reset log msg count to " + std::to_string(count) + ", duration to " + std::to_string(duration)}};
  }
  return {{"State", "unsupported operation: " + op}};
}

json CdcService::TaskObject(const TaskView& view) const {
  json j = SpecToTaskObject(view.spec);
  j["state"] = TaskStateName(view.state);
  if (!view.reason.empty()) j["reason"] = view.reason;
  j["skipped_collections"] = view.spec.skip_collections;  // always a list, [] when none
  if (!view.progress.write_mode.empty()) j["write_mode"] = view.progress.write_mode;  // the mode in use
  return j;
}

}  // namespace cdc
