#include "inspect/inspect.h"

#include <csignal>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "decode/decoder.h"
#include "source/catalog.h"
#include "source/etcd_client.h"
#include "source/log_reader.h"
#include "source/meta_follower.h"
#include "util/log.h"

namespace cdc::inspect {

namespace {

using json = nlohmann::json;

const char kUsage[] =
    "usage: milvus-cdc inspect --config FILE [--from earliest|latest] [--db NAME] [--collection NAME]\n"
    "                          [--max-events N] [--duration SECONDS] [--all-pks]\n"
    "Prints every decoded change of the source as one JSON object per line until interrupted.\n";

struct Options {
  std::string config_path;
  std::string from = "latest";
  std::string db;
  std::string collection;
  long max_events = 0;
  long duration_s = 0;
  bool all_pks = false;  // print every primary key, not a sample of 10
};

json PositionJson(const decode::Position& p) {
  return {{"channel", p.channel}, {"offset", p.offset}, {"ts", p.timestamp}};
}

// Prints each item; counts events so --max-events can stop the run.
class PrintSink : public source::LogSink {
 public:
  PrintSink(long max_events, bool all_pks) : max_events_(max_events), all_pks_(all_pks) {}

  Status Apply(const source::SourceItem& item) override {
    switch (item.kind) {
      case source::SourceItem::Kind::kPack:
        for (const auto& r : item.events) Print(r.event, r.collection.get(), "dml");
        break;
      case source::SourceItem::Kind::kReplicate:
        for (const auto& r : item.events) Print(r.event, nullptr, "replicate");
        break;
      case source::SourceItem::Kind::kCatalog: {
        const auto& c = item.catalog;
        json line = {{"source", "etcd"}, {"type", source::CatalogEventName(c.kind)}, {"db", c.db_name}, {"ts", c.ts}};
        if (!c.collection_name.empty()) line["collection"] = c.collection_name;
        if (c.collection_id) line["collection_id"] = c.collection_id;
        if (!c.partition_name.empty()) line["partition"] = c.partition_name;
        if (!c.index_name.empty()) line["index"] = c.index_name;
        if (c.collection && c.kind == source::CatalogEvent::Kind::kCreateCollection) {
          json fields = json::array();
          for (const auto& f : c.collection->schema.fields()) fields.push_back(f.name());
          line["fields"] = fields;
          line["shards"] = c.collection->shards_num;
          line["dynamic_field"] = c.collection->schema.enable_dynamic_field();
        }
        Emit(line);
        break;
      }
    }
    return Status::Ok();
  }

  bool done() const { return max_events_ > 0 && printed_ >= max_events_; }

 private:
  void Print(const decode::Event& e, const source::CollectionMeta* meta, const char* where) {
    json line = {{"source", where}, {"type", decode::MsgTypeName(e.msg_type)}, {"ts", e.end_ts},
                 {"position", PositionJson(e.position)}};
    std::string db = !e.db_name.empty() ? e.db_name : meta ? meta->db_name : "";
    std::string coll = !e.collection_name.empty() ? e.collection_name : meta ? meta->name : "";
    if (!db.empty()) line["db"] = db;
    if (!coll.empty()) line["collection"] = coll;
    if (e.collection_id) line["collection_id"] = e.collection_id;
    if (!e.partition_name.empty()) line["partition"] = e.partition_name;
    if (!e.vchannel.empty()) line["vchannel"] = e.vchannel;
    if (e.IsDml()) {
      line["rows"] = e.row_count;
      auto pks = decode::PrimaryKeysOf(e, meta ? meta->pk_field_id : 0);
      if (pks.ok()) {
        json sample = json::array();
        const size_t limit = all_pks_ ? SIZE_MAX : 10;
        std::visit([&](const auto& v) {
          for (size_t i = 0; i < v.size() && i < limit; ++i) sample.push_back(v[i]);
        }, *pks);
        line[all_pks_ ? "pks" : "pks_sample"] = sample;
      }
    }
    auto names = decode::CollectionNamesOf(e);
    if (!names.empty()) line["collections"] = names;
    if (names.size() == 1 && coll.empty()) line["collection"] = names.front();
    auto parts = decode::PartitionNamesOf(e);
    if (!parts.empty()) line["partitions"] = parts;
    Emit(line);
  }

  void Emit(const json& line) {
    std::cout << line.dump() << "\n" << std::flush;
    ++printed_;
  }

  const long max_events_;
  const bool all_pks_;
  long printed_ = 0;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "milvus-cdc inspect: %s\n", message.c_str());
  return 2;
}

}  // namespace

int Run(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string v;
    if (a == "--config") {
      if (!next(&o.config_path)) return Fail("--config needs a path");
    } else if (a == "--from") {
      if (!next(&o.from) || (o.from != "earliest" && o.from != "latest")) return Fail("--from is earliest or latest");
    } else if (a == "--db") {
      if (!next(&o.db)) return Fail("--db needs a name");
    } else if (a == "--collection") {
      if (!next(&o.collection)) return Fail("--collection needs a name");
    } else if (a == "--max-events" || a == "--duration") {
      if (!next(&v)) return Fail(a + " needs a number");
      try {
        (a == "--max-events" ? o.max_events : o.duration_s) = std::stol(v);
      } catch (const std::exception&) {
        return Fail(a + " needs a number, got '" + v + "'");
      }
    } else if (a == "--all-pks") {
      o.all_pks = true;
    } else if (a == "--help" || a == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "%s", kUsage);
      return Fail("unknown argument '" + a + "'");
    }
  }
  if (o.config_path.empty()) return Fail("--config is required");
  std::vector<std::string> warnings;
  auto config = LoadConfigFile(o.config_path, &warnings, nullptr);
  if (!config.ok()) return Fail(config.status().message());
  SetLogLevel("warn");
  if (config->source.kafka.address.empty() && !config->source.UsesPulsar()) {
    return Fail("sourceConfig.kafka.address and sourceConfig.pulsar.address are empty");
  }

  auto etcd = source::EtcdClient::Connect(source::EtcdOptions::FromConfig(config->source.etcd));
  if (!etcd.ok()) return Fail("source etcd: " + etcd.status().message());
  source::Catalog catalog(config->source.etcd.root_path + "/" + config->source.etcd.meta_sub_path);
  source::MetaFollower follower(etcd->get(), &catalog);
  if (Status st = follower.Start(); !st.ok()) return Fail(st.message());

  source::LogReaderOptions ro;
  ro.mq = source::MqConfigFrom(config->source);
  ro.replicate_channel = config->source.replicate_chan;
  ro.from = o.from == "earliest" ? source::LogReaderOptions::From::kEarliest : source::LogReaderOptions::From::kLatest;
  const std::string want_db = o.db.empty() && !o.collection.empty() ? "default" : o.db;
  ro.collection_in_scope = [&](const std::string& db, const std::string& coll) {
    return (want_db.empty() || db == want_db) && (o.collection.empty() || coll == o.collection);
  };
  ro.database_in_scope = [&](const std::string& db) {
    return o.collection.empty() && (want_db.empty() || db == want_db);
  };

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  PrintSink sink(o.max_events, o.all_pks);
  source::LogReader reader(ro, &follower, &catalog, &sink);
  if (Status st = reader.Start(); !st.ok()) return Fail(st.message());
  const std::string where = config->source.UsesPulsar() ? config->source.pulsar.ServiceUrl() : config->source.kafka.address;
  std::fprintf(stderr, "inspect: reading %s (%s) from %s (Ctrl-C to stop)\n", ro.mq.name(), where.c_str(),
               o.from.c_str());

  auto started = std::chrono::steady_clock::now();
  int exit_code = 0;
  for (;;) {
    timespec wait{0, 200 * 1000 * 1000};
    if (sigtimedwait(&stop_signals, nullptr, &wait) > 0) break;
    if (sink.done()) break;
    if (o.duration_s > 0 && std::chrono::steady_clock::now() - started > std::chrono::seconds(o.duration_s)) break;
    if (Status h = reader.health(); !h.ok() && h.code() != StatusCode::kUnavailable) {
      std::fprintf(stderr, "milvus-cdc inspect: %s\n", h.message().c_str());
      exit_code = 1;
      break;
    }
  }
  reader.Stop();
  follower.Stop();
  return exit_code;
}

}  // namespace cdc::inspect
