#include "corpus.h"

#include <cstring>
#include <fstream>
#include <iterator>

namespace cdc::decode::testdata {

namespace {

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <typename T>
T LoadLe(const char* p) {  // the corpus is little-endian, as is every host we build on
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

std::string Bed23Dir() { return std::string(CDC_TESTDATA_DIR) + "/bed-2.3"; }

StatusOr<Corpus> LoadCorpus(const std::string& dir) {
  Corpus c;
  ASSIGN_OR_RETURN(std::string index_text, ReadFile(dir + "/index.json"));
  try {
    c.index = nlohmann::json::parse(index_text);
    c.workload = c.index.at("workload");
    c.replicate_channel = c.index.at("replicate_channel").get<std::string>();
  } catch (const std::exception& e) {
    return InvalidArgument(dir + "/index.json: " + e.what());
  }

  std::map<std::pair<std::string, int64_t>, int32_t> indexed_types;
  for (const auto& m : c.index["messages"]) {
    indexed_types[{m.at("channel").get<std::string>(), m.at("offset").get<int64_t>()}] = m.at("msg_type").get<int32_t>();
  }

  for (const auto& ch : c.index["channels"]) {
    std::string channel = ch.at("channel").get<std::string>();
    ASSIGN_OR_RETURN(std::string data, ReadFile(dir + "/" + ch.at("file").get<std::string>()));
    auto& out = c.messages[channel];
    size_t p = 0;
    while (p < data.size()) {
      if (data.size() - p < 20) return InvalidArgument(channel + ": truncated record header at byte " + std::to_string(p));
      CorpusMessage m;
      m.channel = channel;
      m.offset = LoadLe<int64_t>(data.data() + p);
      m.kafka_ts_ms = LoadLe<int64_t>(data.data() + p + 8);
      uint32_t size = LoadLe<uint32_t>(data.data() + p + 16);
      p += 20;
      if (data.size() - p < size) return InvalidArgument(channel + ": truncated record at byte " + std::to_string(p));
      m.bytes = data.substr(p, size);
      p += size;
      auto it = indexed_types.find({channel, m.offset});
      if (it == indexed_types.end()) {
        return InvalidArgument(channel + "@" + std::to_string(m.offset) + " is not in index.json");
      }
      m.indexed_msg_type = it->second;
      out.push_back(std::move(m));
    }
    bool has_ticks = false;
    for (const auto& m : out) has_ticks |= m.indexed_msg_type == static_cast<int32_t>(MsgType::kTimeTick);
    if (channel != c.replicate_channel && has_ticks) c.dml_channels.push_back(channel);
  }
  return c;
}

}  // namespace cdc::decode::testdata
