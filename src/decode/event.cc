#include "decode/event.h"

#include "common.pb.h"

namespace cdc::decode {

std::string MsgTypeName(int32_t msg_type) {
  namespace common = milvus::proto::common;
  // The 2.5.8 enum is a superset of what 2.3-2.5 servers write, so its names cover every known
  // value; anything else (a newer server) is reported with its number.
  if (msg_type != 0 && common::MsgType_IsValid(msg_type)) {
    return common::MsgType_Name(static_cast<common::MsgType>(msg_type));
  }
  return "Unknown(" + std::to_string(msg_type) + ")";
}

size_t PayloadBytes(const Pack& pack) {
  size_t n = 0;
  for (const auto& e : pack.events) n += e.payload_bytes;
  return n;
}

}  // namespace cdc::decode
