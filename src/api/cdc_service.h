// CdcService: the `POST /cdc` contract. Turns a request body into the official
// envelope {code, message, data}; the only place a Status becomes a response.
// Transport-free so it can be tested without HTTP. Thread-safe (state lives in
// TaskManager and Metrics).
#pragma once

#include <functional>

#include <string>

#include <nlohmann/json.hpp>

#include "task/task_manager.h"
#include "util/metrics.h"

namespace cdc {

struct CdcReply {
  int http_status = 200;  // always 200 for /cdc, as the official server; the class is in body.code
  nlohmann::json body;
};

class CdcService {
 public:
  CdcService(TaskManager* tasks, Metrics* metrics);
  // How `position` encodes a checkpoint offset as Milvus's msgID (Kafka's 8 little-endian bytes
  // unless set; a Pulsar source sets its MessageIdData form).
  void SetMsgIdOfOffset(std::function<std::string(int64_t)> f) { msg_id_of_offset_ = std::move(f); }

  // Handles one /cdc request with HTTP method `method` and raw `body`.
  CdcReply Handle(const std::string& method, const std::string& body);

  // The /cdc/metrics text, with the task lag gauges brought up to date.
  std::string MetricsText();

  // Error envelope for a body the transport refused (e.g. too large).
  static nlohmann::json ErrorBody(int code, const std::string& message);

 private:
  CdcReply HandleType(const std::string& type, const nlohmann::json& data);
  nlohmann::json Maintenance(const nlohmann::json& data);
  // `verify`: starts a run on the task and waits up to request_data.wait_s for its report.
  CdcReply Verify(const nlohmann::json& data, const std::string& task_id);
  nlohmann::json TaskObject(const TaskView& view) const;

  TaskManager* const tasks_;
  Metrics* const metrics_;
  std::function<std::string(int64_t)> msg_id_of_offset_;
};

}  // namespace cdc
