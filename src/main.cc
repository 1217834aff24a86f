// milvus-cdc: flags -> Config -> wiring. The one file that knows every concrete type.
#include <strings.h>

#include <csignal>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/name_mapper.h"
#include "api/cdc_service.h"
#include "api/http_server.h"
#include "config/config.h"
#include "inspect/inspect.h"
#include "pipeline/task_pipeline.h"
#include "source/mq_factory.h"
#include "store/etcd_meta_store.h"
#include "store/sqlite_meta_store.h"
#include "target/milvus_client.h"
#include "task/task_manager.h"
#include "util/log.h"
#include "util/memory.h"
#include "util/metrics.h"
#include "util/secret_box.h"
#include "verify/verify_cli.h"
#include "verify/verifying_pipeline.h"

#ifndef CDC_VERSION
#define CDC_VERSION "dev"
#endif

namespace {

const char kUsage[] =
    "usage: milvus-cdc [--config PATH] [--address HOST:PORT]\n"
    "       milvus-cdc inspect --config PATH [--from earliest|latest] [--collection NAME] ...\n"
    "       milvus-cdc verify --config PATH --task ID [--level count|keys|rows] [--collection DB.NAME] ...\n"
    "\n"
    "  --config PATH         YAML configuration (keys of the official cdc.yaml); without it,\n"
    "                        built-in defaults are used (SQLite task store in ./data)\n"
    "  --address HOST:PORT   listen address, overrides the config's `address`\n"
    "  --version             print the version and exit\n";

struct Flags {
  std::string config_path;
  std::string address;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "milvus-cdc: %s\n", message.c_str());
  return 2;
}

// Checks a task's target with a real gRPC call, as `create` promises.
cdc::Status CheckTarget(const cdc::MilvusConnectParam& m) {
  auto client = cdc::target::MilvusClient::Connect(cdc::pipeline::TargetConnectParams(m));
  return client.ok() ? cdc::Status::Ok() : client.status();
}

}  // namespace

int main(int argc, char** argv) {
  cdc::TuneAllocator();
  Flags flags;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "inspect") {
    return cdc::inspect::Run(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (!args.empty() && args[0] == "verify") {
    return cdc::verify::RunCli(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    if (a == "--config" || a == "-c") {
      if (!value(&flags.config_path)) return Fail("--config needs a path");
    } else if (a.rfind("--config=", 0) == 0) {
      flags.config_path = a.substr(9);
    } else if (a == "--address") {
      if (!value(&flags.address)) return Fail("--address needs HOST:PORT");
    } else if (a.rfind("--address=", 0) == 0) {
      flags.address = a.substr(10);
    } else if (a == "--version") {
      std::printf("milvus-cdc %s\n", CDC_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "%s", kUsage);
      return Fail("unknown argument '" + a + "'");
    }
  }

  // Block the stop signals before any thread starts, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> warnings;
  std::vector<std::string> notices;
  cdc::Config config;
  if (!flags.config_path.empty()) {
    auto loaded = cdc::LoadConfigFile(flags.config_path, &warnings, &notices);
    if (!loaded.ok()) return Fail(loaded.status().message());
    config = std::move(loaded).value();
  }
  if (!flags.address.empty()) {
    config.address = flags.address;
    if (auto st = config.Validate(); !st.ok()) return Fail("--address: " + st.message());
  }
  if (!cdc::SetLogLevel(config.log_level == "warning" ? "warn" : config.log_level)) {
    return Fail("invalid logLevel '" + config.log_level + "'");
  }
  auto log = cdc::GetLogger("main");
  for (const auto& w : warnings) log->warn("{}", w);
  for (const auto& n : notices) log->info("{}", n);
  if (flags.config_path.empty()) log->info("no --config given: using built-in defaults");

  const bool etcd_store = strcasecmp(config.meta_store.store_type.c_str(), "etcd") == 0;  // validated: sqlite|etcd
  const std::string key_file = cdc::EffectiveSecretKeyFile(config.meta_store);
  std::error_code ec;
  auto key_dir = std::filesystem::path(key_file).parent_path();
  if (!key_dir.empty()) std::filesystem::create_directories(key_dir, ec);
  auto secrets = cdc::SecretBox::FromKeyFile(key_file);
  if (!secrets.ok()) return Fail(secrets.status().message());
  std::unique_ptr<cdc::MetaStore> store;
  if (etcd_store) {
    auto opened = cdc::EtcdMetaStore::Open(cdc::source::EtcdOptions::FromConfig(config.meta_store.etcd),
                                           config.meta_store.root_path, std::move(secrets).value());
    if (!opened.ok()) return Fail(opened.status().message());
    store = std::move(opened).value();
    log->info("task store: etcd under '{}'", config.meta_store.root_path);
  } else {
    auto opened = cdc::SqliteMetaStore::Open(config.meta_store.sqlite_path, config.meta_store.root_path,
                                             std::move(secrets).value());
    if (!opened.ok()) return Fail(opened.status().message());
    store = std::move(opened).value();
    log->info("task store: sqlite {}", config.meta_store.sqlite_path);
  }

  if (config.source.UsesPulsar()) {
    log->info("source log: Pulsar {} ({}/{})", config.source.pulsar.ServiceUrl(), config.source.pulsar.tenant,
              config.source.pulsar.ns);
  } else {
    log->info("source log: Kafka {}", config.source.kafka.address);
  }
  cdc::Metrics metrics;
  // One reader per source channel for all tasks (sourceConfig.shareReaders).
  std::optional<cdc::source::ChannelHub> hub;
  if (config.source.share_readers) hub.emplace();
  cdc::pipeline::TaskPipelineFactory task_pipelines({&config, store.get(), &metrics, hub ? &*hub : nullptr});
  // `verify` on top of the task pipelines (see verify/verifying_pipeline.h).
  cdc::verify::VerifyingPipelineFactory pipelines(&task_pipelines, cdc::verify::SourceConnectParams(config.source.milvus),
                                                  &metrics);
  cdc::TaskManagerOptions options;
  options.max_task_num = config.max_task_num;
  options.limits.max_name_length = config.max_name_length;
  options.limits.replicate_chan = config.source.replicate_chan;
  cdc::TaskManager tasks(options, store.get(), &pipelines, CheckTarget, &metrics);
  if (auto st = tasks.Recover(); !st.ok()) return Fail("cannot recover stored tasks: " + st.message());

  cdc::CdcService service(&tasks, &metrics);
  if (config.source.UsesPulsar()) {
    service.SetMsgIdOfOffset([](int64_t offset) {
      return cdc::source::MsgIdOfOffset(cdc::source::MqConfig::Kind::kPulsar, offset);
    });
  }
  cdc::HttpServerOptions http;
  if (auto st = cdc::ParseHostPort(config.address, &http.host, &http.port); !st.ok()) return Fail(st.message());
  http.max_body_bytes = config.max_request_bytes;
  http.version = CDC_VERSION;
  cdc::HttpServer server(http, &service);
  if (auto st = server.Start(); !st.ok()) return Fail(st.message());
  log->info("milvus-cdc {} ready on {}", CDC_VERSION, config.address);

  // Wait for a stop signal; meanwhile hand freed memory back every second.
  const timespec second{1, 0};
  int sig = -1;
  while (sig < 0) {
    sig = sigtimedwait(&stop_signals, nullptr, &second);
    if (sig < 0) cdc::ReleaseFreeMemory();
  }
  log->info("signal {} received: stopping", sig);
  server.Stop();
  tasks.Shutdown();
  log->info("stopped");
  return 0;
}
