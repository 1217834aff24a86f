#include "pipeline/name_mapper.h"
#include "verify/verify_cli.h"

#include <strings.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "config/config.h"
#include "store/checkpoint.h"
#include "store/etcd_meta_store.h"
#include "store/sqlite_meta_store.h"
#include "target/milvus_client.h"
#include "task/pipeline.h"
#include "task/task_spec.h"
#include "util/log.h"
#include "util/secret_box.h"
#include "verify/verifier.h"
#include "verify/verify_runner.h"

namespace cdc::verify {

namespace {

const char kUsage[] =
    "usage: milvus-cdc verify --config FILE --task ID [--level count|keys|rows] [--collection DB.NAME ...]\n"
    "Compares the task's SOURCE and TARGET (its whole scope, or the named collections; a name without\n"
    "a database is in `default`) and prints the report as JSON. Exit code: 0 equal, 1 different,\n"
    "2 error (the reason on stderr).\n";

struct Options {
  std::string config_path;
  std::string task_id;
  std::string level = "rows";
  std::vector<std::pair<std::string, std::string>> collections;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "milvus-cdc verify: %s\n", message.c_str());
  return 2;
}

// The store the server uses, opened without creating anything: a missing file or key is an error.
StatusOr<std::unique_ptr<MetaStore>> OpenStore(const Config& config) {
  const std::string key_file = EffectiveSecretKeyFile(config.meta_store);
  std::error_code ec;
  if (!std::filesystem::exists(key_file, ec)) {
    return NotFound("the key file " + key_file + " is missing (metaStoreConfig.secretKeyFile): the task's "
                    "credentials cannot be read without it");
  }
  ASSIGN_OR_RETURN(SecretBox secrets, SecretBox::FromKeyFile(key_file));
  if (strcasecmp(config.meta_store.store_type.c_str(), "etcd") == 0) {
    ASSIGN_OR_RETURN(auto store, EtcdMetaStore::Open(source::EtcdOptions::FromConfig(config.meta_store.etcd),
                                                     config.meta_store.root_path, std::move(secrets)));
    return std::unique_ptr<MetaStore>(std::move(store));
  }
  if (!std::filesystem::exists(config.meta_store.sqlite_path, ec)) {
    return NotFound("no task store at " + config.meta_store.sqlite_path + " (metaStoreConfig.sqlitePath)");
  }
  ASSIGN_OR_RETURN(auto store,
                   SqliteMetaStore::Open(config.meta_store.sqlite_path, config.meta_store.root_path, std::move(secrets)));
  return std::unique_ptr<MetaStore>(std::move(store));
}

// How far the task has applied the source, from its stored checkpoints (a server running the
// task stores them every half second).
StatusOr<uint64_t> StoredAppliedTs(MetaStore* store, const std::string& task_id) {
  ASSIGN_OR_RETURN(auto positions, store->GetPositions(task_id));
  std::vector<ChannelProgress> channels;
  for (const auto& p : positions) {
    if (p.collection_id != kCheckpointId) continue;
    ChannelProgress c;
    c.channel = p.channel;
    if (!DecodeCheckpoint(p.data, &c.offset, &c.ts)) continue;
    channels.push_back(c);
  }
  return AppliedTsOf(channels);
}

}  // namespace

target::ConnectParams SourceConnectParams(const SourceMilvusConfig& m) {
  target::ConnectParams p;
  p.uri = m.uri;
  p.token = m.token;
  p.server_pem_path = m.ca_pem_path;  // as the pipeline dials it
  p.server_name = m.server_name;
  p.connect_timeout_s = m.connect_timeout_s;
  p.call_timeout_s = 60;
  return p;
}

int RunCli(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string value;
    auto next = [&](const std::string& flag) {
      if (a.rfind(flag + "=", 0) == 0) {
        value = a.substr(flag.size() + 1);
        return true;
      }
      if (a != flag || i + 1 >= args.size()) return false;
      value = args[++i];
      return true;
    };
    if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else if (next("--config")) {
      o.config_path = value;
    } else if (next("--task")) {
      o.task_id = value;
    } else if (next("--level")) {
      o.level = value;
    } else if (next("--collection")) {
      const size_t dot = value.find('.');
      if (dot == std::string::npos) {
        o.collections.emplace_back("default", value);
      } else {
        o.collections.emplace_back(value.substr(0, dot), value.substr(dot + 1));
      }
    } else {
      std::fprintf(stderr, "%s", kUsage);
      return Fail("unknown argument or missing value: '" + a + "'");
    }
  }
  if (o.config_path.empty()) return Fail("--config is required");
  if (o.task_id.empty()) return Fail("--task is required");
  std::vector<std::string> warnings;
  auto config = LoadConfigFile(o.config_path, &warnings, nullptr);
  if (!config.ok()) return Fail(config.status().message());
  SetLogLevel("warn");  // stdout carries the report; stderr only what went wrong
  if (config->source.milvus.uri.empty()) {
    return Fail("sourceConfig.milvus.uri is not set in " + o.config_path +
                ": verify reads the source through its own API");
  }

  auto store = OpenStore(*config);
  if (!store.ok()) return Fail("cannot open the task store: " + store.status().message());
  auto record = (*store)->GetTask(o.task_id);
  if (!record.ok()) return Fail("cannot read the task: " + record.status().message());
  if (!*record) return Fail("not found the task, task_id: " + o.task_id);
  auto spec = SpecFromStored((*record)->spec_json, (*record)->secrets_json);
  if (!spec.ok()) return Fail("cannot read the task " + o.task_id + ": " + spec.status().message());
  spec->task_id = o.task_id;
  VerifyOptions request;
  request.collections = o.collections;
  request.level = o.level;
  if (Status st = ValidateVerifyOptions(*spec, request); !st.ok()) return Fail(st.message());

  auto source_client = target::MilvusClient::Connect(SourceConnectParams(config->source.milvus));
  if (!source_client.ok()) return Fail("cannot connect to the source Milvus: " + source_client.status().message());
  target::ConnectParams target_params = pipeline::TargetConnectParams(spec->milvus);
  target_params.call_timeout_s = 60;  // a page of rows can take a while on a busy server
  auto target_client = target::MilvusClient::Connect(target_params);
  if (!target_client.ok()) return Fail("cannot connect to the target Milvus: " + target_client.status().message());
  MilvusSide source(source_client->get(), "source");
  MilvusSide target(target_client->get(), "target");

  VerifierOptions vo;
  vo.level = o.level;
  if ((*record)->state == TaskState::kPaused) {
    vo.no_applied_reason = "the task is paused: the re-checks did not wait for it, and the differences include "
                           "source changes made since it paused";
  } else {
    MetaStore* s = store->get();
    const std::string id = o.task_id;
    vo.applied_ts = [s, id] { return StoredAppliedTs(s, id); };
  }
  Verifier verifier(&source, &target, vo);
  auto refs = verifier.Resolve(*spec, o.collections);
  if (!refs.ok()) return Fail("cannot list the task's collections: " + refs.status().message());

  VerifyReport report;
  report.level = o.level;
  int exit_code = 0;
  for (const auto& ref : *refs) {
    report.collections.push_back(verifier.Verify(ref));
    const CollectionReport& c = report.collections.back();
    if (!c.error.empty()) {
      std::fprintf(stderr, "milvus-cdc verify: %s.%s: %s\n", c.db.c_str(), c.name.c_str(), c.error.c_str());
      exit_code = 2;
    }
  }
  nlohmann::json out = ToJson(report);
  out["task_id"] = o.task_id;
  std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  if (exit_code != 0) return exit_code;
  return report.Equal() ? 0 : 1;
}

}  // namespace cdc::verify
