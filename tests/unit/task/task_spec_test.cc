#include "task/task_spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "util/json_decode.h"

namespace cdc {
namespace {

using json = nlohmann::json;

// A create body that passes every check.
json ValidBody() {
  return json::parse(R"({
    "milvus_connect_param": {"uri": "http://target:19530", "token": "root:Milvus", "connect_timeout": 10},
    "collection_infos": [{"name": "*"}]
  })");
}

SpecLimits Limits() {
  SpecLimits l;
  l.max_name_length = 256;
  l.replicate_chan = "by-dev-replicate-msg";
  return l;
}

Status DecodeAndValidate(const json& body, const SpecLimits& limits = Limits()) {
  auto spec = DecodeTaskSpec(body);
  if (!spec.ok()) return spec.status();
  return ValidateSpec(*spec, limits);
}

// Collects every object key in `j`, recursively.
void Keys(const json& j, std::vector<std::string>* out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      out->push_back(it.key());
      Keys(*it, out);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) Keys(e, out);
  }
}

bool HasKey(const json& j, const std::string& key) {
  std::vector<std::string> keys;
  Keys(j, &keys);
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// ---------------- DecodeTaskSpec ----------------

TEST(DecodeTaskSpecTest, DecodesEveryField) {
  auto spec = DecodeTaskSpec(json::parse(R"({
    "task_id": "my-task",
    "milvus_connect_param": {
      "host": "h", "port": 19530, "enable_tls": true, "username": "u", "password": "p",
      "uri": "https://t:443", "token": "tok",
      "dial_config": {"server_name": "sn", "server_pem_path": "/s.pem", "ca_pem_path": "/ca.pem",
                      "client_pem_path": "/c.pem", "client_key_path": "/c.key"},
      "channel_num": 16, "ignore_partition": true, "connect_timeout": 30},
    "kafka_connect_param": {"address": "k:9092", "topic": "t", "enable_sasl": true,
      "sasl": {"username": "su", "password": "sp", "mechanisms": "PLAIN", "security_protocol": "SASL_SSL"}},
    "collection_infos": [{"name": "coll", "positions": {"by-dev-dml_0_1v0": "AAA="}, "use_start_position": true}],
    "db_collections": {"db1": [{"name": "*"}]},
    "rpc_channel_info": {"name": "by-dev-replicate-msg", "position": "UE9T"},
    "extra_info": {"enable_user_role": true},
    "buffer_config": {"period": 5, "size": 1024},
    "name_mapping": [{"source_db": "db1", "target_db": "db2", "collection_mapping": {"a": "b"}}],
    "disable_auto_start": true,
    "positions": {"ignored": "deprecated"},
    "unknown_field": 1
  })"));
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const TaskSpec& s = *spec;
  EXPECT_EQ(s.task_id, "my-task");
  EXPECT_EQ(s.milvus.host, "h");
  EXPECT_EQ(s.milvus.port, 19530);
  EXPECT_TRUE(s.milvus.enable_tls);
  EXPECT_EQ(s.milvus.username, "u");
  EXPECT_EQ(s.milvus.password, "p");
  EXPECT_EQ(s.milvus.uri, "https://t:443");
  EXPECT_EQ(s.milvus.token, "tok");
  EXPECT_EQ(s.milvus.dial_config.server_name, "sn");
  EXPECT_EQ(s.milvus.dial_config.server_pem_path, "/s.pem");
  EXPECT_EQ(s.milvus.dial_config.ca_pem_path, "/ca.pem");
  EXPECT_EQ(s.milvus.dial_config.client_pem_path, "/c.pem");
  EXPECT_EQ(s.milvus.dial_config.client_key_path, "/c.key");
  EXPECT_EQ(s.milvus.channel_num, 16);
  EXPECT_TRUE(s.milvus.ignore_partition);
  EXPECT_EQ(s.milvus.connect_timeout, 30);
  EXPECT_EQ(s.kafka.address, "k:9092");
  EXPECT_EQ(s.kafka.topic, "t");
  EXPECT_TRUE(s.kafka.enable_sasl);
  EXPECT_EQ(s.kafka.sasl_username, "su");
  EXPECT_EQ(s.kafka.sasl_password, "sp");
  EXPECT_EQ(s.kafka.sasl_mechanisms, "PLAIN");
  EXPECT_EQ(s.kafka.sasl_security_protocol, "SASL_SSL");
  ASSERT_TRUE(s.collection_infos.has_value());
  ASSERT_EQ(s.collection_infos->size(), 1u);
  EXPECT_EQ((*s.collection_infos)[0].name, "coll");
  EXPECT_TRUE((*s.collection_infos)[0].use_start_position);
  ASSERT_TRUE((*s.collection_infos)[0].positions.has_value());
  EXPECT_EQ((*s.collection_infos)[0].positions->at("by-dev-dml_0_1v0"), "AAA=");
  ASSERT_TRUE(s.db_collections.has_value());
  EXPECT_EQ(s.db_collections->at("db1").at(0).name, "*");
  EXPECT_EQ(s.rpc_channel_name, "by-dev-replicate-msg");
  EXPECT_EQ(s.rpc_channel_position, "UE9T");
  EXPECT_TRUE(s.enable_user_role);
  EXPECT_EQ(s.buffer_period, 5);
  EXPECT_EQ(s.buffer_size, 1024);
  ASSERT_EQ(s.name_mapping.size(), 1u);
  EXPECT_EQ(s.name_mapping[0].source_db, "db1");
  EXPECT_EQ(s.name_mapping[0].target_db, "db2");
  EXPECT_EQ(s.name_mapping[0].collection_mapping.at("a"), "b");
  EXPECT_TRUE(s.disable_auto_start);
}

TEST(DecodeTaskSpecTest, KeysMatchCaseInsensitively) {
  auto spec = DecodeTaskSpec(json::parse(R"({
    "Milvus_Connect_Param": {"URI": "http://t:1", "Token": "x", "Connect_Timeout": 3},
    "COLLECTION_INFOS": [{"Name": "c"}], "Disable_Auto_Start": true, "TASK_ID": "id1"})"));
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->milvus.uri, "http://t:1");
  EXPECT_EQ(spec->milvus.token, "x");
  EXPECT_EQ(spec->milvus.connect_timeout, 3);
  EXPECT_EQ(spec->collection_infos->at(0).name, "c");
  EXPECT_TRUE(spec->disable_auto_start);
  EXPECT_EQ(spec->task_id, "id1");
}

TEST(DecodeTaskSpecTest, NumbersAreTruncatedIntoIntegers) {
  auto spec = DecodeTaskSpec(json::parse(R"({"milvus_connect_param": {"host": "h", "port": 19530.9,
    "connect_timeout": 2.5, "channel_num": 4.0}, "buffer_config": {"period": 1.9, "size": -0.5}})"));
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->milvus.port, 19530);
  EXPECT_EQ(spec->milvus.connect_timeout, 2);
  EXPECT_EQ(spec->milvus.channel_num, 4);
  EXPECT_EQ(spec->buffer_period, 1);
  EXPECT_EQ(spec->buffer_size, 0);
}

TEST(DecodeTaskSpecTest, TypeMismatchesNameEveryField) {
  auto spec = DecodeTaskSpec(json::parse(R"({
    "milvus_connect_param": {"host": "h", "port": "19530", "enable_tls": "yes", "dial_config": []},
    "kafka_connect_param": {"sasl": {"username": 1}},
    "collection_infos": [{"name": 5, "positions": {"ch_1v0": 7}}, "oops"],
    "db_collections": {"db": {"name": "*"}},
    "rpc_channel_info": {"name": false},
    "extra_info": {"enable_user_role": "true"},
    "buffer_config": {"size": "1"},
    "name_mapping": [{"source_db": 1, "collection_mapping": {"a": 2}}, 3],
    "disable_auto_start": 1,
    "task_id": 12
  })"));
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = spec.status().message();
  for (const char* part : {
           "'task_id' expected type 'string', got 'int'",
           "'milvus_connect_param.port' expected type 'int', got 'string'",
           "'milvus_connect_param.enable_tls' expected type 'bool', got 'string'",
           "'milvus_connect_param.dial_config' expected type 'object', got 'array'",
           "'kafka_connect_param.sasl.username' expected type 'string', got 'int'",
           "'collection_infos[0].name' expected type 'string', got 'int'",
           "'collection_infos[0].positions.ch_1v0' expected type 'string', got 'int'",
           "'collection_infos[1]' expected type 'object', got 'string'",
           "'db_collections.db' expected type 'array', got 'object'",
           "'rpc_channel_info.name' expected type 'string', got 'bool'",
           "'extra_info.enable_user_role' expected type 'bool', got 'string'",
           "'buffer_config.size' expected type 'int', got 'string'",
           "'name_mapping[0].source_db' expected type 'string', got 'int'",
           "'name_mapping[0].collection_mapping.a' expected type 'string', got 'int'",
           "'name_mapping[1]' expected type 'object', got 'int'",
           "'disable_auto_start' expected type 'bool', got 'int'",
       }) {
    EXPECT_NE(m.find(part), std::string::npos) << "missing: " << part << "\nin: " << m;
  }
}

TEST(DecodeTaskSpecTest, SectionOfWrongTypeIsNamed) {
  for (const char* body : {R"({"milvus_connect_param": "http://t:1"})", R"({"collection_infos": {"name": "*"}})",
                           R"({"db_collections": [1]})", R"({"buffer_config": 5})"}) {
    auto spec = DecodeTaskSpec(json::parse(body));
    ASSERT_FALSE(spec.ok()) << body;
    EXPECT_NE(spec.status().message().find("expected type"), std::string::npos) << spec.status().message();
  }
}

TEST(DecodeTaskSpecTest, NullAndAbsentMeanDefaults) {
  auto from_null = DecodeTaskSpec(json(nullptr));
  ASSERT_TRUE(from_null.ok());
  EXPECT_FALSE(from_null->collection_infos.has_value());
  EXPECT_FALSE(from_null->db_collections.has_value());
  EXPECT_TRUE(from_null->milvus.Empty());

  auto with_nulls = DecodeTaskSpec(json::parse(
      R"({"milvus_connect_param": null, "collection_infos": null, "db_collections": null, "task_id": null,
          "rpc_channel_info": null, "disable_auto_start": null})"));
  ASSERT_TRUE(with_nulls.ok()) << with_nulls.status().ToString();
  EXPECT_FALSE(with_nulls->collection_infos.has_value());
  EXPECT_FALSE(with_nulls->db_collections.has_value());
  EXPECT_EQ(with_nulls->task_id, "");
}

TEST(DecodeTaskSpecTest, EmptyListIsPresentButEmpty) {
  auto spec = DecodeTaskSpec(json::parse(R"({"collection_infos": [], "db_collections": {"db": null}})"));
  ASSERT_TRUE(spec.ok());
  ASSERT_TRUE(spec->collection_infos.has_value());
  EXPECT_TRUE(spec->collection_infos->empty());
  ASSERT_TRUE(spec->db_collections.has_value());
  EXPECT_TRUE(spec->db_collections->at("db").empty());
}

TEST(DecodeTaskSpecTest, NonObjectRequestDataIsNamed) {
  for (const json& data : {json::array(), json("x"), json(1)}) {
    auto spec = DecodeTaskSpec(data);
    ASSERT_FALSE(spec.ok());
    EXPECT_EQ(spec.status().message(),
              "'request_data' expected type 'object', got '" + JsonDecoder::TypeName(data) + "'");
  }
}

// ---------------- ValidateSpec: every rule of cdc-http-api.md §4.1 ----------------

struct RuleCase {
  const char* name;
  std::function<void(json&)> mutate;
  std::string message;
};

TEST(ValidateSpecTest, ValidBodyPasses) {
  Status st = DecodeAndValidate(ValidBody());
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(ValidateSpecTest, EveryRuleAndMessage) {
  const std::string long256(256, 'n');
  const std::string long257(257, 'n');
  const std::vector<RuleCase> cases = {
      // 1. Target choice.
      {"no target", [](json& b) { b.erase("milvus_connect_param"); }, "the downstream address is empty"},
      {"milvus all empty", [](json& b) { b["milvus_connect_param"] = {{"uri", ""}, {"host", ""}, {"port", 0}}; },
       "the downstream address is empty"},
      {"milvus and kafka", [](json& b) { b["kafka_connect_param"] = {{"address", "k:9092"}, {"topic", "t"}}; },
       "don't support milvus and kafka at the same time now"},
      // 2. Milvus parameters.
      {"host empty", [](json& b) { b["milvus_connect_param"] = {{"port", 19530}}; }, "the milvus host is empty"},
      {"port zero", [](json& b) { b["milvus_connect_param"] = {{"host", "h"}, {"port", 0}}; },
       "the milvus port is less or equal zero"},
      {"port negative", [](json& b) { b["milvus_connect_param"] = {{"host", "h"}, {"port", -1}}; },
       "the milvus port is less or equal zero"},
      {"username only", [](json& b) { b["milvus_connect_param"]["username"] = "u"; },
       "cannot set only one of the milvus username and password"},
      {"password only", [](json& b) { b["milvus_connect_param"]["password"] = "p"; },
       "cannot set only one of the milvus username and password"},
      {"timeout negative", [](json& b) { b["milvus_connect_param"]["connect_timeout"] = -1; },
       "the milvus connect timeout is less zero"},
      // 3. Kafka.
      {"kafka topic empty",
       [](json& b) {
         b.erase("milvus_connect_param");
         b["kafka_connect_param"] = {{"address", "k:9092"}};
       },
       "the kafka topic is empty"},
      {"kafka target (deliberately rejected: never applied)",
       [](json& b) {
         b.erase("milvus_connect_param");
         b["kafka_connect_param"] = {{"address", "k:9092"}, {"topic", "t"}};
       },
       "a kafka target is not supported by this server; set milvus_connect_param"},
      // 4. Buffer.
      {"period negative", [](json& b) { b["buffer_config"] = {{"period", -1}}; }, "the cache period is less zero"},
      {"size negative", [](json& b) { b["buffer_config"] = {{"size", -1}}; }, "the cache size is less zero"},
      // 5. Scope count.
      {"no scope", [](json& b) { b.erase("collection_infos"); }, "the collection info is empty"},
      {"empty collection_infos", [](json& b) { b["collection_infos"] = json::array(); },
       "the collection info is empty"},
      {"empty db_collections",
       [](json& b) {
         b.erase("collection_infos");
         b["db_collections"] = json::object();
       },
       "the collection info is empty"},
      {"both forms", [](json& b) { b["db_collections"] = json::parse(R"({"db":[{"name":"*"}]})"); },
       "the collection info and db collection info should be only one"},
      // 6. DB name length.
      {"db name too long",
       [&](json& b) {
         b.erase("collection_infos");
         b["db_collections"] = {{long257, json::parse(R"([{"name":"*"}])")}};
       },
       "the db name length exceeds 256 characters, " + long257},
      // 7. Each collection list.
      {"db list empty",
       [](json& b) {
         b.erase("collection_infos");
         b["db_collections"] = json::parse(R"({"db": []})");
       },
       "empty collection info"},
      {"db list null",
       [](json& b) {
         b.erase("collection_infos");
         b["db_collections"] = json::parse(R"({"db": null})");
       },
       "empty collection info"},
      {"star with positions",
       [](json& b) { b["collection_infos"] = json::parse(R"([{"name":"*","positions":{"ch_1v0":"AAAA"}}])"); },
       "the collection name is `*`, the positions should be empty"},
      {"star with positions in db form",
       [](json& b) {
         b.erase("collection_infos");
         b["db_collections"] = json::parse(R"({"db":[{"name":"*","positions":{"ch_1v0":"AAAA"}}]})");
       },
       "the collection name is `*`, the positions should be empty"},
      {"position channel not virtual",
       [](json& b) { b["collection_infos"] = json::parse(R"([{"name":"c","positions":{"by-dev-dml_0":"AAAA"}}])"); },
       "the position channel name is not virtual channel, by-dev-dml_0"},
      {"position channel without underscore",
       [](json& b) { b["collection_infos"] = json::parse(R"([{"name":"c","positions":{"dmlv0":"AAAA"}}])"); },
       "the position channel name is not virtual channel, dmlv0"},
      {"empty name", [](json& b) { b["collection_infos"] = json::parse(R"([{"name":""}])"); },
       "there is a collection name that is empty. "},
      {"absent name", [](json& b) { b["collection_infos"] = json::parse(R"([{"use_start_position":true}])"); },
       "there is a collection name that is empty. "},
      {"empty name in db form",
       [](json& b) {
         b.erase("collection_infos");
         b["db_collections"] = json::parse(R"({"db":[{"name":""}]})");
       },
       "there is a collection name that is empty. "},
      {"name too long", [&](json& b) { b["collection_infos"] = {{{"name", long257}}}; },
       "there are some collection names whose length exceeds 256 characters, [" + long257 + "]"},
      // 8. Replicate channel.
      {"rpc channel mismatch", [](json& b) { b["rpc_channel_info"] = {{"name", "other-replicate-msg"}}; },
       "the rpc channel is invalid, the channel name should be the same as the source config"},
      // §4.2 step 5: position keys.
      {"position key not a vchannel",
       [](json& b) { b["collection_infos"] = json::parse(R"([{"name":"c","positions":{"by-dev-dml_0_xv0":"AAAA"}}])"); },
       "the vchannel is invalid, by-dev-dml_0_xv0, err: it does not match <pchannel>_<id>v<shard>"},
      {"positions of two collections",
       [](json& b) {
         b["collection_infos"] =
             json::parse(R"([{"name":"c","positions":{"dml_0_100v0":"AAAA","dml_1_200v1":"AAAA"}}])");
       },
       "the channel position info should be in the same collection"},
      // Our own checks.
      {"task id with a slash", [](json& b) { b["task_id"] = "../etc/passwd"; },
       "the task_id must be 1 to 128 characters of letters, digits, '_', '-' or '.'"},
      {"task id too long", [](json& b) { b["task_id"] = std::string(129, 'a'); },
       "the task_id must be 1 to 128 characters of letters, digits, '_', '-' or '.'"},
      {"name mapping without source db", [](json& b) { b["name_mapping"] = json::parse(R"([{"target_db":"x"}])"); },
       "the source_db of a name mapping is empty"},
      {"name mapping target db too long",
       [&](json& b) { b["name_mapping"] = {{{"source_db", "default"}, {"target_db", long257}}}; },
       "the db name length exceeds 256 characters, " + long257},
  };
  for (const auto& c : cases) {
    json body = ValidBody();
    c.mutate(body);
    Status st = DecodeAndValidate(body);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.name << ": " << st.ToString();
    EXPECT_EQ(st.message(), c.message) << c.name;
  }
  // Names exactly at the limit are fine.
  json ok = ValidBody();
  ok["collection_infos"] = {{{"name", long256}}};
  EXPECT_TRUE(DecodeAndValidate(ok).ok());
}

TEST(ValidateSpecTest, AcceptedVariants) {
  const std::vector<std::pair<const char*, std::function<void(json&)>>> variants = {
      {"legacy host and port", [](json& b) { b["milvus_connect_param"] = {{"host", "h"}, {"port", 19530}}; }},
      {"username and password", [](json& b) {
         b["milvus_connect_param"]["username"] = "u";
         b["milvus_connect_param"]["password"] = "p";
       }},
      {"uri with port 0", [](json& b) { b["milvus_connect_param"]["port"] = 0; }},
      {"timeout zero", [](json& b) { b["milvus_connect_param"]["connect_timeout"] = 0; }},
      {"all databases", [](json& b) {
         b.erase("collection_infos");
         b["db_collections"] = json::parse(R"({"*": [{"name": "*"}]})");
       }},
      {"named collection with positions", [](json& b) {
         b["collection_infos"] = json::parse(R"([{"name":"c","positions":{"dml_0_100v0":"AAAA","dml_1_100v1":"AAAA"}}])");
       }},
      {"star with empty positions", [](json& b) { b["collection_infos"] = json::parse(R"([{"name":"*","positions":{}}])"); }},
      {"rpc channel equal to config", [](json& b) { b["rpc_channel_info"] = {{"name", "by-dev-replicate-msg"}}; }},
      {"client task id", [](json& b) { b["task_id"] = "Task-1_a.b"; }},
      {"buffer zero", [](json& b) { b["buffer_config"] = {{"period", 0}, {"size", 0}}; }},
  };
  for (const auto& [name, mutate] : variants) {
    json body = ValidBody();
    mutate(body);
    Status st = DecodeAndValidate(body);
    EXPECT_TRUE(st.ok()) << name << ": " << st.ToString();
  }
}

TEST(ValidateSpecTest, EarlierRulesWin) {
  struct Case {
    const char* body;
    const char* message;
  };
  const Case cases[] = {
      {R"({"milvus_connect_param": {"port": 1}, "kafka_connect_param": {"address": "k"}})",
       "don't support milvus and kafka at the same time now"},
      {R"({"milvus_connect_param": {"port": 1, "username": "u", "connect_timeout": -1},
           "buffer_config": {"period": -1}})",
       "the milvus host is empty"},
      {R"({"milvus_connect_param": {"uri": "u", "username": "u", "connect_timeout": -1}})",
       "cannot set only one of the milvus username and password"},
      {R"({"milvus_connect_param": {"uri": "u", "connect_timeout": -1}, "buffer_config": {"period": -1}})",
       "the milvus connect timeout is less zero"},
      {R"({"milvus_connect_param": {"uri": "u"}, "buffer_config": {"period": -1, "size": -1}})",
       "the cache period is less zero"},
      {R"({"milvus_connect_param": {"uri": "u"}, "buffer_config": {"size": -1}})", "the cache size is less zero"},
      {R"({"milvus_connect_param": {"uri": "u"}, "rpc_channel_info": {"name": "x"}})", "the collection info is empty"},
      {R"({"milvus_connect_param": {"uri": "u"}, "collection_infos": [{"name": "a"}, {"name": ""}],
           "db_collections": {"db": []}})",
       "the collection info and db collection info should be only one"},
      {R"({"milvus_connect_param": {"uri": "u"}, "collection_infos": [{"name": ""}],
           "rpc_channel_info": {"name": "x"}})",
       "there is a collection name that is empty. "},
      {R"({"milvus_connect_param": {"uri": "u"}, "collection_infos": [{"name": "*", "positions": {"bad": "x"}}]})",
       "the collection name is `*`, the positions should be empty"},
      {R"({"milvus_connect_param": {"uri": "u"}, "collection_infos": [{"name": "c"}],
           "rpc_channel_info": {"name": "x"}, "task_id": "bad/id"})",
       "the rpc channel is invalid, the channel name should be the same as the source config"},
  };
  for (const auto& c : cases) {
    Status st = DecodeAndValidate(json::parse(c.body));
    EXPECT_EQ(st.message(), c.message) << c.body;
  }
}

TEST(ValidateSpecTest, LimitsComeFromTheConfig) {
  SpecLimits limits;
  limits.max_name_length = 5;
  limits.replicate_chan = "my-chan";
  json body = ValidBody();
  body["collection_infos"] = {{{"name", "abcdef"}}};
  EXPECT_EQ(DecodeAndValidate(body, limits).message(),
            "there are some collection names whose length exceeds 5 characters, [abcdef]");
  body["collection_infos"] = {{{"name", "abcde"}}};
  body["rpc_channel_info"] = {{"name", "my-chan"}};
  EXPECT_TRUE(DecodeAndValidate(body, limits).ok());
  body["rpc_channel_info"] = {{"name", "by-dev-replicate-msg"}};
  EXPECT_EQ(DecodeAndValidate(body, limits).message(),
            "the rpc channel is invalid, the channel name should be the same as the source config");
}

// ---------------- Effective values ----------------

TEST(MilvusConnectParamTest, EffectiveUriAndToken) {
  MilvusConnectParam m;
  m.host = "h";
  m.port = 19530;
  EXPECT_EQ(m.EffectiveUri(), "http://h:19530");
  m.enable_tls = true;
  EXPECT_EQ(m.EffectiveUri(), "https://h:19530");
  m.host = "https://full:443";
  EXPECT_EQ(m.EffectiveUri(), "https://full:443");
  m.host = "http://plain:1";
  EXPECT_EQ(m.EffectiveUri(), "http://plain:1");
  m.uri = "http://u:2";
  EXPECT_EQ(m.EffectiveUri(), "http://u:2");

  EXPECT_EQ(m.EffectiveToken(), "");
  m.username = "root";
  EXPECT_EQ(m.EffectiveToken(), "");  // needs both
  m.password = "Milvus";
  EXPECT_EQ(m.EffectiveToken(), "root:Milvus");
  m.token = "apikey";
  EXPECT_EQ(m.EffectiveToken(), "apikey");
}

TEST(TaskSpecTest, ScopeNames) {
  TaskSpec s;
  EXPECT_TRUE(s.ScopeNames().empty());
  s.collection_infos = std::vector<CollectionInfo>{{"c1", std::nullopt, false}};
  EXPECT_EQ(s.ScopeNames(), std::vector<std::string>{"default.c1"});
  s.collection_infos.reset();
  s.db_collections = std::map<std::string, std::vector<CollectionInfo>>{{"*", {{"*", std::nullopt, false}}}};
  EXPECT_EQ(s.ScopeNames(), std::vector<std::string>{"*.*"});
}

// ---------------- Rendering, storing, round trip ----------------

TaskSpec FullSpec() {
  auto spec = DecodeTaskSpec(json::parse(R"({
    "task_id": "t-1",
    "milvus_connect_param": {"host": "h", "port": 19530, "enable_tls": true, "username": "USER-SECRET",
      "password": "PASSWORD-SECRET", "uri": "https://t:443", "token": "TOKEN-SECRET",
      "dial_config": {"server_name": "sn", "ca_pem_path": "/ca.pem"}, "channel_num": 2,
      "ignore_partition": true, "connect_timeout": 7},
    "kafka_connect_param": {"enable_sasl": true,
      "sasl": {"username": "SASL-USER-SECRET", "password": "SASL-PASSWORD-SECRET", "mechanisms": "PLAIN"}},
    "db_collections": {"db1": [{"name": "c", "positions": {"dml_0_5v0": "AAAA"}, "use_start_position": true}]},
    "rpc_channel_info": {"name": "by-dev-replicate-msg", "position": "UE9T"},
    "extra_info": {"enable_user_role": true},
    "buffer_config": {"period": 3, "size": 4},
    "name_mapping": [{"source_db": "db1", "target_db": "db2", "collection_mapping": {"c": "d"}}],
    "disable_auto_start": true,
    "user_passwords": {"alice": "ALICE-PW-SECRET"}
  })"));
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  TaskSpec s = std::move(spec).value();
  s.exclude_collections = {"db1.other"};
  return s;
}

const char* const kSecrets[] = {"USER-SECRET", "PASSWORD-SECRET", "TOKEN-SECRET", "SASL-USER-SECRET",
                                "SASL-PASSWORD-SECRET", "ALICE-PW-SECRET"};

TEST(SpecToTaskObjectTest, NeverContainsCredentials) {
  json obj = SpecToTaskObject(FullSpec());
  const std::string text = obj.dump();
  for (const char* key : {"username", "password", "token", "user_passwords"}) {
    EXPECT_FALSE(HasKey(obj, key)) << key << " in " << text;
  }
  for (const char* secret : kSecrets) EXPECT_EQ(text.find(secret), std::string::npos) << secret;
}

TEST(SpecToTaskObjectTest, EchoesTheOfficialShape) {
  json obj = SpecToTaskObject(FullSpec());
  EXPECT_EQ(obj["task_id"], "t-1");
  const json& m = obj["milvus_connect_param"];
  EXPECT_EQ(m["host"], "h");
  EXPECT_EQ(m["port"], 19530);
  EXPECT_EQ(m["enable_tls"], true);
  EXPECT_EQ(m["uri"], "https://t:443");
  EXPECT_EQ(m["dial_config"], json::parse(R"({"server_name": "sn", "ca_pem_path": "/ca.pem"})"));
  EXPECT_EQ(m["channel_num"], 2);
  EXPECT_EQ(m["ignore_partition"], true);
  EXPECT_EQ(m["connect_timeout"], 7);
  EXPECT_EQ(obj["kafka_connect_param"],
            json::parse(R"({"address": "", "topic": "", "enable_sasl": true, "sasl": {"mechanisms": "PLAIN"}})"));
  EXPECT_TRUE(obj["collection_infos"].is_null());
  EXPECT_EQ(obj["db_collections"],
            json::parse(R"({"db1": [{"name": "c", "positions": {"dml_0_5v0": "AAAA"}, "use_start_position": true}]})"));
  EXPECT_EQ(obj["rpc_channel_info"]["name"], "by-dev-replicate-msg");
  EXPECT_EQ(obj["extra_info"]["enable_user_role"], true);
  EXPECT_EQ(obj["buffer_config"], json::parse(R"({"period": 3, "size": 4})"));
  EXPECT_EQ(obj["disable_auto_start"], true);
  EXPECT_EQ(obj["name_mapping"][0]["collection_mapping"]["c"], "d");
  EXPECT_FALSE(obj.contains("exclude_collections"));
  EXPECT_FALSE(obj.contains("state"));  // added by the API layer
}

TEST(SpecToTaskObjectTest, MinimalSpecShape) {
  auto spec = DecodeTaskSpec(ValidBody());
  ASSERT_TRUE(spec.ok());
  json obj = SpecToTaskObject(*spec);
  EXPECT_EQ(obj["milvus_connect_param"]["dial_config"], json::object());
  EXPECT_EQ(obj["kafka_connect_param"]["sasl"], json::object());
  EXPECT_EQ(obj["collection_infos"], json::parse(R"([{"name": "*", "positions": null, "use_start_position": false}])"));
  EXPECT_TRUE(obj["db_collections"].is_null());
  EXPECT_EQ(obj["name_mapping"], json::array());
}

TEST(SpecStorageTest, SpecJsonHasNoCredentialsAndSecretsJsonHasThem) {
  TaskSpec s = FullSpec();
  json spec_json = SpecToJson(s);
  for (const char* secret : kSecrets) EXPECT_EQ(spec_json.dump().find(secret), std::string::npos) << secret;
  EXPECT_FALSE(spec_json.contains("task_id"));
  EXPECT_EQ(spec_json["exclude_collections"], json::array({"db1.other"}));

  json secrets = json::parse(SecretsToJson(s));
  EXPECT_EQ(secrets, json::parse(R"({"username": "USER-SECRET", "password": "PASSWORD-SECRET",
    "token": "TOKEN-SECRET", "sasl_username": "SASL-USER-SECRET", "sasl_password": "SASL-PASSWORD-SECRET",
    "user_passwords": {"alice": "ALICE-PW-SECRET"}})"));
  EXPECT_FALSE(spec_json.contains("user_passwords"));
}

TEST(SpecStorageTest, NoCredentialsGiveEmptySecrets) {
  auto spec = DecodeTaskSpec(json::parse(R"({"milvus_connect_param": {"uri": "http://t:1"}})"));
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(SecretsToJson(*spec), "");
}

TEST(SpecStorageTest, RoundTripThroughStoredForm) {
  const TaskSpec original = FullSpec();
  auto restored = SpecFromStored(SpecToJson(original).dump(), SecretsToJson(original));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(restored->task_id, "");  // the id lives in the record, not in the spec
  EXPECT_EQ(SpecToJson(*restored), SpecToJson(original));
  EXPECT_EQ(SecretsToJson(*restored), SecretsToJson(original));
  EXPECT_EQ(restored->milvus.username, "USER-SECRET");
  EXPECT_EQ(restored->milvus.password, "PASSWORD-SECRET");
  EXPECT_EQ(restored->milvus.token, "TOKEN-SECRET");
  EXPECT_EQ(restored->kafka.sasl_username, "SASL-USER-SECRET");
  EXPECT_EQ(restored->kafka.sasl_password, "SASL-PASSWORD-SECRET");
  EXPECT_EQ(restored->user_passwords, (std::map<std::string, std::string>{{"alice", "ALICE-PW-SECRET"}}));
  EXPECT_EQ(restored->exclude_collections, std::vector<std::string>{"db1.other"});
  ASSERT_TRUE(restored->db_collections.has_value());
  EXPECT_EQ(restored->db_collections->at("db1").at(0).positions->at("dml_0_5v0"), "AAAA");
  EXPECT_FALSE(restored->collection_infos.has_value());
}

TEST(SpecStorageTest, RoundTripOfMinimalSpec) {
  auto original = DecodeTaskSpec(ValidBody());
  ASSERT_TRUE(original.ok());
  auto restored = SpecFromStored(SpecToJson(*original).dump(), SecretsToJson(*original));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  EXPECT_EQ(SpecToJson(*restored), SpecToJson(*original));
  EXPECT_EQ(restored->milvus.token, "root:Milvus");
  ASSERT_TRUE(restored->collection_infos.has_value());
  EXPECT_FALSE(restored->collection_infos->at(0).positions.has_value());
  EXPECT_FALSE(restored->db_collections.has_value());
}

TEST(SpecStorageTest, CorruptStoredFormsAreInternalErrors) {
  auto bad_spec = SpecFromStored("{not json", "");
  ASSERT_FALSE(bad_spec.ok());
  EXPECT_EQ(bad_spec.status().code(), StatusCode::kInternal);
  EXPECT_EQ(bad_spec.status().message(), "stored task spec is not valid JSON");

  auto bad_secrets = SpecFromStored("{}", "[1]");
  ASSERT_FALSE(bad_secrets.ok());
  EXPECT_EQ(bad_secrets.status().message(), "stored task credentials are not valid JSON");

  auto wrong_types = SpecFromStored(R"({"milvus_connect_param": {"port": "x"}})", "");
  ASSERT_FALSE(wrong_types.ok());
  EXPECT_EQ(wrong_types.status().message().rfind("stored task spec: ", 0), 0u) << wrong_types.status().message();
}

TEST(SpecStorageTest, MistypedStoredCredentialsAreAnErrorNotAnException) {
  bool threw = false;
  std::string what;
  try {
    auto restored = SpecFromStored("{}", R"({"username": 5})");
    EXPECT_FALSE(restored.ok());
  } catch (const std::exception& e) {
    threw = true;
    what = e.what();
  }
  if (threw) {
    GTEST_SKIP() << "BUG: src/task/task_spec.cc SpecFromStored uses json::value(\"username\", \"\") etc., "
                    "which throws nlohmann::type_error when a stored credential is not a string ("
                 << what
                 << "); the exception escapes TaskManager::Recover. Fix: read each key with "
                    "JsonDecoder::String (or check is_string()) and return Internal(...).";
  }
}

// ---------------- user_passwords ----------------

TEST(UserPasswordsTest, DecodedAsAnObjectOfStrings) {
  auto spec = DecodeTaskSpec(json::parse(R"({"user_passwords": {"alice": "pw-a", "bob": "pw-b"}})"));
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->user_passwords, (std::map<std::string, std::string>{{"alice", "pw-a"}, {"bob", "pw-b"}}));

  auto mistyped = DecodeTaskSpec(json::parse(R"({"user_passwords": {"alice": "pw", "bob": 5, "carol": null}})"));
  ASSERT_FALSE(mistyped.ok());
  EXPECT_EQ(mistyped.status().message(),
            "'user_passwords.bob' expected type 'string', got 'int'; "
            "'user_passwords.carol' expected type 'string', got 'null'");
  auto not_object = DecodeTaskSpec(json::parse(R"({"user_passwords": ["alice"]})"));
  ASSERT_FALSE(not_object.ok());
  EXPECT_EQ(not_object.status().message(), "'user_passwords' expected type 'object', got 'array'");
}

TEST(UserPasswordsTest, OnlyWithEnableUserRoleAndNeverEmpty) {
  json body = ValidBody();
  body["user_passwords"] = {{"alice", "pw-a"}};
  EXPECT_EQ(DecodeAndValidate(body).message(),
            "user_passwords is only used with extra_info.enable_user_role: true; set it or remove user_passwords");
  body["extra_info"] = {{"enable_user_role", false}};
  EXPECT_EQ(DecodeAndValidate(body).code(), StatusCode::kInvalidArgument);
  body["extra_info"] = {{"enable_user_role", true}};
  EXPECT_TRUE(DecodeAndValidate(body).ok());
  body["user_passwords"] = {{"", "pw"}};
  EXPECT_EQ(DecodeAndValidate(body).message(), "user_passwords has an empty user name");
  body["user_passwords"] = {{"bob", ""}};
  EXPECT_EQ(DecodeAndValidate(body).message(), "user_passwords has an empty password for user bob");
  body["user_passwords"] = json::object();
  body["extra_info"] = {{"enable_user_role", false}};
  EXPECT_TRUE(DecodeAndValidate(body).ok()) << "an empty object is no passwords";
}

TEST(UserPasswordsTest, MistypedStoredPasswordsAreInternalErrors) {
  auto not_object = SpecFromStored("{}", R"({"user_passwords": "x"})");
  ASSERT_FALSE(not_object.ok());
  EXPECT_EQ(not_object.status().code(), StatusCode::kInternal);
  EXPECT_EQ(not_object.status().message(), "stored task user_passwords is not an object");
  auto not_string = SpecFromStored("{}", R"({"user_passwords": {"alice": 1}})");
  ASSERT_FALSE(not_string.ok());
  EXPECT_EQ(not_string.status().message(), "stored task password of user 'alice' is not a string");
}

}  // namespace
}  // namespace cdc
