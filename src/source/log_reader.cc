#include "source/log_reader.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "decode/decoder.h"
#include "util/log.h"

namespace cdc::source {

namespace {

constexpr uint64_t kNoDdl = std::numeric_limits<uint64_t>::max();

bool IsDatabaseOp(int32_t type) {
  return type == static_cast<int32_t>(decode::MsgType::kCreateDatabase) ||
         type == static_cast<int32_t>(decode::MsgType::kDropDatabase) ||
         type == static_cast<int32_t>(decode::MsgType::kAlterDatabase);
}

}  // namespace

LogReader::LogReader(LogReaderOptions options, MetaFollower* follower, Catalog* catalog, LogSink* sink)
    : options_(std::move(options)), follower_(follower), catalog_(catalog), sink_(sink) {}

LogReader::~LogReader() { Stop(); }

bool LogReader::InScope(const CollectionMeta& c) const {
  return options_.collection_in_scope && options_.collection_in_scope(c.db_name, c.name);
}

bool LogReader::Replays(const CollectionMeta& c) const {
  return options_.from == LogReaderOptions::From::kEarliest ||
         (options_.replay_from_creation && options_.replay_from_creation(c.db_name, c.name));
}

bool LogReader::BeforePin(const std::string& channel, int64_t offset) const {
  auto pin = options_.pins.find(channel);
  return pin != options_.pins.end() && offset < pin->second;
}

void LogReader::Wake() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    woken_ = true;
  }
  wake_cv_.notify_one();
}

Status LogReader::Start() {
  follower_->SetNotify([this] { Wake(); });
  // Every pchannel an in-scope collection uses. A channel without a stored checkpoint starts
  // at the earliest of: the creation position of a collection that replays, or that was
  // created after the task first started (its creation is past the channel's pin, or the
  // channel was not pinned at all); the pin, for a collection that existed then. Else latest.
  std::map<std::string, std::optional<int64_t>> starts;
  bool any_replay = options_.from == LogReaderOptions::From::kEarliest;
  for (const auto& c : catalog_->Collections()) {
    if (!InScope(*c)) continue;
    announced_.insert(c->id);
    const bool replays = Replays(*c);
    any_replay = any_replay || replays;
    for (const auto& pch : c->pchannels) {
      channel_collections_[pch].insert(c->id);
      auto& start = starts[pch];
      auto sp = c->start_positions.find(pch);
      std::optional<int64_t> off = sp == c->start_positions.end() ? std::nullopt : OffsetOfMsgId(options_.mq.kind, sp->second);
      const auto pin = options_.pins.find(pch);
      const bool pinned_task = !options_.pins.empty();
      if (!replays && pinned_task && pin != options_.pins.end() && (!off || *off < pin->second)) {
        off = pin->second;  // existed when the task started: from there
      } else if (!replays && !pinned_task) {
        continue;  // no pins (inspect, or a task stored before pins): latest
      }
      if (off && (!start || *off < *start)) start = off;
    }
  }
  for (const auto& [pch, start] : starts) RETURN_IF_ERROR(EnsureChannel(pch, start));
  if (!options_.replicate_channel.empty()) {
    ChannelReaderOptions ro;
    ro.mq = options_.mq;
    ro.topic = options_.replicate_channel;
    ro.plain = true;
    ro.queue_capacity = options_.queue_packs;
    if (auto it = options_.resume.find(ro.topic); it != options_.resume.end()) {
      ro.start = StartAt::Offset(it->second.offset);
      std::lock_guard<std::mutex> lock(status_mu_);
      applied_[ro.topic] = it->second;
    } else if (any_replay) {
      ro.start = StartAt::Earliest();
    }
    replicate_ = std::make_unique<ChannelReader>(ro, [this] { Wake(); });
    RETURN_IF_ERROR(replicate_->Start());
  }
  dispatch_ = std::thread([this] { Dispatch(); });
  return Status::Ok();
}

void LogReader::Stop() {
  stop_ = true;
  Wake();
  if (dispatch_.joinable()) dispatch_.join();
  std::lock_guard<std::mutex> lock(status_mu_);
  for (auto& [name, r] : dml_) r->Stop();
  if (replicate_) replicate_->Stop();
}

Status LogReader::EnsureChannel(const std::string& pchannel, std::optional<int64_t> start_offset) {
  if (dml_.count(pchannel)) return Status::Ok();
  ChannelReaderOptions ro;
  ro.mq = options_.mq;
  ro.topic = pchannel;
  ro.queue_capacity = options_.queue_packs;
  ro.early = options_.early;
  auto stored = options_.resume.find(pchannel);
  if (stored != options_.resume.end()) {
    ro.start = StartAt::Offset(stored->second.offset);
    ro.resume = stored->second;
  } else if (start_offset) {
    ro.start = StartAt::Offset(*start_offset);
  } else {
    ro.start = StartAt::Latest();
  }
  std::unique_ptr<PackSource> reader;
  if (options_.hub) {
    reader = options_.hub->Subscribe(ro, [this] { Wake(); });
  } else {
    reader = std::make_unique<ChannelReader>(ro, [this] { Wake(); });
  }
  RETURN_IF_ERROR(reader->Start());
  GetLogger("source")->info("reading pchannel {} from {}", pchannel,
                            ro.resume ? "checkpoint offset " + std::to_string(ro.resume->offset)
                            : start_offset ? "offset " + std::to_string(*start_offset)
                                           : std::string("latest"));
  std::lock_guard<std::mutex> lock(status_mu_);
  if (ro.resume) {
    applied_[pchannel] = *ro.resume;
  } else if (start_offset) {
    // Checkpoint the start right away: a restart before the first pack must not start at latest.
    applied_[pchannel] = decode::Position{pchannel, *start_offset, 0};
  }
  dml_[pchannel] = std::move(reader);
  return Status::Ok();
}

void LogReader::Dispatch() {
  auto log = GetLogger("source");
  while (!stop_) {
    auto progressed = Step();
    if (!progressed.ok()) {
      log->error("log reader stopped: {}", progressed.status().message());
      std::lock_guard<std::mutex> lock(status_mu_);
      health_ = progressed.status();
      return;
    }
    if (*progressed) continue;
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return woken_ || stop_.load(); });
    woken_ = false;
  }
}

void LogReader::TakeCatalogEvents() {
  for (auto& e : follower_->TakeEvents()) {
    SourceItem item;
    item.kind = SourceItem::Kind::kCatalog;
    item.ts = e.ts;
    switch (e.kind) {
      case CatalogEvent::Kind::kCreateDatabase:
      case CatalogEvent::Kind::kDropDatabase:
        // The replicate channel carries both with the operation's timestamp; etcd has
        // none for a drop, so it could overtake the data of that database.
        if (!options_.replicate_channel.empty()) continue;
        if (!options_.database_in_scope || !options_.database_in_scope(e.db_name)) continue;
        break;
      case CatalogEvent::Kind::kCreateCollection: {
        if (!e.collection || !InScope(*e.collection) || announced_.count(e.collection_id)) continue;
        announced_.insert(e.collection_id);
        for (const auto& pch : e.collection->pchannels) {
          std::optional<int64_t> start;
          if (auto sp = e.collection->start_positions.find(pch); sp != e.collection->start_positions.end()) {
            start = OffsetOfMsgId(options_.mq.kind, sp->second);
          }
          Status st = EnsureChannel(pch, start);
          if (!st.ok()) {
            std::lock_guard<std::mutex> lock(status_mu_);
            health_ = st;
          }
          channel_collections_[pch].insert(e.collection_id);
        }
        break;
      }
      case CatalogEvent::Kind::kDropCollection:
      case CatalogEvent::Kind::kDropPartition:
        continue;  // applied from the DML channels, in log order
      case CatalogEvent::Kind::kRbacChanged:
        if (!options_.rbac) continue;
        break;
      case CatalogEvent::Kind::kCreateAlias:
      case CatalogEvent::Kind::kDropAlias:
        if (!(e.collection && InScope(*e.collection)) && !(e.previous && InScope(*e.previous))) continue;
        break;
      case CatalogEvent::Kind::kRenameCollection: {
        const bool now_in = e.collection && InScope(*e.collection);
        const bool was_in = e.previous && InScope(*e.previous);
        if (!now_in && !was_in) continue;
        if (now_in && !announced_.count(e.collection_id)) {
          // Entered the scope by its new name: read its channels from here on.
          announced_.insert(e.collection_id);
          for (const auto& pch : e.collection->pchannels) {
            if (Status st = EnsureChannel(pch, std::nullopt); !st.ok()) {
              std::lock_guard<std::mutex> lock(status_mu_);
              health_ = st;
            }
            channel_collections_[pch].insert(e.collection_id);
          }
        } else if (!now_in) {
          announced_.erase(e.collection_id);
          for (auto& [pch, ids] : channel_collections_) ids.erase(e.collection_id);
        }
        break;
      }
      default:
        if (!e.collection || !InScope(*e.collection)) continue;
        break;
    }
    item.catalog = std::move(e);
    pending_.insert(Pending{std::move(item)});
  }
}

StatusOr<SourceItem> LogReader::Route(const decode::Pack& pack, bool* needs_refresh) {
  SourceItem item;
  item.kind = SourceItem::Kind::kPack;
  item.channel = pack.channel;
  item.ts = pack.end_ts;
  item.end_position = pack.end_position;
  item.closed_at = pack.closed_at;
  item.open = pack.open;
  const auto early = early_ids_.find(pack.channel);
  for (const auto& ev : pack.events) {
    auto meta = catalog_->CollectionByIdAny(ev.collection_id);
    // An open pack waits for its tick rather than insert into a partition the catalog lacks.
    const bool unknown_partition = pack.open && meta && ev.type() == decode::MsgType::kInsert &&
                                   !meta->partitions.count(ev.partition_id);
    if (!meta || unknown_partition) {
      if (needs_refresh && !*needs_refresh) {
        *needs_refresh = true;
        return item;
      }
      if (skipped_unknown_++ == 0) {
        GetLogger("source")->warn("channel {} offset {}: {} for unknown collection {} skipped", pack.channel,
                                  ev.position.offset, decode::MsgTypeName(ev.msg_type), ev.collection_id);
      }
      continue;
    }
    if (!InScope(*meta)) continue;
    if (!Replays(*meta) && BeforePin(pack.channel, ev.position.offset)) continue;  // predates the task
    item.events.push_back(RoutedEvent{ev, meta});
    if (!pack.open && early != early_ids_.end() && ev.IsDml() && early->second.count(ev.msg_id)) {
      item.events.back().event.early = true;
    }
  }
  return item;
}

Status LogReader::Emit(const SourceItem& item) {
  Status st = sink_->Apply(item);
  if (!st.ok()) return st;
  if (item.kind != SourceItem::Kind::kCatalog && !item.open) {
    std::lock_guard<std::mutex> lock(status_mu_);
    applied_[item.channel] = item.end_position;
  }
  return Status::Ok();
}

StatusOr<bool> LogReader::Step() {
  bool progressed = false;
  TakeCatalogEvents();
  for (auto& [name, reader] : dml_) {
    if (Status h = reader->health(); !h.ok() && h.code() != StatusCode::kUnavailable) return h;
  }
  if (replicate_) {
    if (Status h = replicate_->health(); !h.ok() && h.code() != StatusCode::kUnavailable) return h;
    while (const decode::Pack* p = replicate_->Peek()) {
      SourceItem item;
      item.kind = SourceItem::Kind::kReplicate;
      item.channel = p->channel;
      item.ts = p->end_ts;
      item.end_position = p->end_position;
      item.events.push_back(RoutedEvent{p->events.front(), nullptr});
      replicate_->Pop();
      pending_.insert(Pending{std::move(item)});
      progressed = true;
    }
  }

  // Packs that end before the next DDL item go first, channel by channel.
  for (auto& [name, reader] : dml_) {
    while (const decode::Pack* p = reader->Peek()) {
      const uint64_t next_ddl = pending_.empty() ? kNoDdl : pending_.begin()->item.ts;
      if (p->open) {
        RETURN_IF_ERROR(EmitOpen(name, *p, next_ddl));
        reader->Pop();
        progressed = true;
        continue;
      }
      if (p->end_ts > next_ddl) break;
      ASSIGN_OR_RETURN(bool emitted, EmitPack(name, *p, kNoDdl));
      if (!emitted) break;  // a refresh queued an earlier DDL item: look again
      PopClosed(name, reader.get(), *p);
      progressed = true;
    }
  }

  // A DDL item goes once every DML channel has been read past it. A pack that straddles
  // it (begins before, ends after) is split: its events up to the item go first.
  uint64_t watermark = kNoDdl;
  for (auto& [name, reader] : dml_) watermark = std::min(watermark, reader->watermark());
  while (!pending_.empty() && pending_.begin()->item.ts <= watermark) {
    const uint64_t ts = pending_.begin()->item.ts;
    bool blocked = false;
    for (auto& [name, reader] : dml_) {
      const decode::Pack* p = reader->Peek();
      if (!p) continue;
      if (p->end_ts <= ts) {
        blocked = true;  // a whole pack before the item is still queued: the loop above takes it
        break;
      }
      if (p->begin_ts < ts && partial_[name] < ts) {
        ASSIGN_OR_RETURN(bool emitted, EmitPack(name, *p, ts));
        if (!emitted) {
          blocked = true;
          break;
        }
        partial_[name] = ts;
      }
    }
    if (blocked || pending_.empty() || pending_.begin()->item.ts != ts) break;
    SourceItem item = pending_.begin()->item;
    pending_.erase(pending_.begin());
    if (item.kind == SourceItem::Kind::kReplicate && !ReplicateInScope(item.events.front().event)) {
      std::lock_guard<std::mutex> lock(status_mu_);
      applied_[item.channel] = item.end_position;  // nothing to do, but it was read
    } else {
      RETURN_IF_ERROR(Emit(item));
    }
    progressed = true;
  }
  RetireIdleChannels();
  return progressed;
}

StatusOr<bool> LogReader::EmitPack(const std::string& channel, const decode::Pack& pack, uint64_t up_to) {
  // Events already emitted by an earlier split, and (for a split) those after `up_to`, stay out.
  const uint64_t done = partial_.count(channel) ? partial_[channel] : 0;
  decode::Pack part;
  const decode::Pack* use = &pack;
  if (done > 0 || up_to != kNoDdl) {
    part.channel = pack.channel;
    part.begin_ts = pack.begin_ts;
    part.end_ts = pack.end_ts;
    part.start_position = pack.start_position;
    part.end_position = pack.end_position;
    part.closed_at = pack.closed_at;
    for (const auto& ev : pack.events) {
      if (ev.end_ts > done && ev.end_ts <= up_to) part.events.push_back(ev);
    }
    if (up_to != kNoDdl) part.end_position = pack.start_position;  // the checkpoint stays before the pack
    use = &part;
  }
  bool needs_refresh = false;
  ASSIGN_OR_RETURN(SourceItem item, Route(*use, &needs_refresh));
  if (needs_refresh) {
    // The log names a collection the catalog lacks: catch up with etcd, then look again.
    RETURN_IF_ERROR(follower_->Refresh());
    const uint64_t before = pending_.empty() ? kNoDdl : pending_.begin()->item.ts;
    TakeCatalogEvents();
    const uint64_t after = pending_.empty() ? kNoDdl : pending_.begin()->item.ts;
    if (after < before && after < use->end_ts) return false;
    ASSIGN_OR_RETURN(item, Route(*use, nullptr));
  }
  if (up_to != kNoDdl && item.events.empty()) return true;  // nothing of this pack before the item
  if (up_to != kNoDdl) item.ts = up_to;
  RETURN_IF_ERROR(Emit(item));
  for (const auto& ev : item.events) {
    if (ev.event.msg_type == static_cast<int32_t>(decode::MsgType::kDropCollection)) {
      channel_collections_[channel].erase(ev.event.collection_id);
    }
  }
  return true;
}

Status LogReader::EmitOpen(const std::string& channel, const decode::Pack& pack, uint64_t next_ddl) {
  if (early_blocked_.count(channel)) return Status::Ok();
  decode::Pack part = pack;
  // Around a join of the shared reader, the same event may come in two open packs.
  auto& ids = early_ids_[channel];
  part.events.erase(std::remove_if(part.events.begin(), part.events.end(),
                                   [&](const decode::Event& ev) { return ids.count(ev.msg_id) > 0; }),
                    part.events.end());
  if (part.events.empty()) return Status::Ok();
  auto past = std::find_if(part.events.begin(), part.events.end(),
                           [&](const decode::Event& ev) { return ev.end_ts > next_ddl; });
  if (past != part.events.end()) {
    early_blocked_.insert(channel);  // the rest goes after the DDL item, with the closed pack
    part.events.erase(past, part.events.end());
    if (part.events.empty()) return Status::Ok();
  }
  bool needs_refresh = false;
  ASSIGN_OR_RETURN(SourceItem item, Route(part, &needs_refresh));
  if (needs_refresh) {
    // Catch up with etcd; the events wait for their tick, which orders them after what it finds.
    // At most once a second: a backlog into a partition dropped since would ask on every pack.
    early_blocked_.insert(channel);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_open_refresh_ < std::chrono::seconds(1)) return Status::Ok();
    last_open_refresh_ = now;
    RETURN_IF_ERROR(follower_->Refresh());
    TakeCatalogEvents();
    return Status::Ok();
  }
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    auto it = applied_.find(channel);
    item.end_position = it != applied_.end() ? it->second : part.start_position;
  }
  if (!item.events.empty()) RETURN_IF_ERROR(Emit(item));
  for (const auto& ev : part.events) ids.insert(ev.msg_id);
  return Status::Ok();
}

void LogReader::PopClosed(const std::string& channel, PackSource* reader, const decode::Pack& pack) {
  if (auto it = early_ids_.find(channel); it != early_ids_.end()) {
    for (const auto& ev : pack.events) it->second.erase(ev.msg_id);
  }
  early_blocked_.erase(channel);
  partial_.erase(channel);
  reader->Pop();
}

bool LogReader::ReplicateInScope(const decode::Event& ev) const {
  // Operations written before the task first started count only for collections that replay.
  const bool before_pin = BeforePin(ev.position.channel, ev.position.offset);
  if (IsDatabaseOp(ev.msg_type)) {
    return !before_pin && options_.database_in_scope && options_.database_in_scope(ev.db_name);
  }
  const std::string db = ev.db_name.empty() ? "default" : ev.db_name;
  auto names = decode::CollectionNamesOf(ev);
  if (names.empty()) return !before_pin && options_.database_in_scope && options_.database_in_scope(db);
  for (const auto& n : names) {
    if (!options_.collection_in_scope || !options_.collection_in_scope(db, n)) continue;
    if (!before_pin) return true;
    if (auto meta = catalog_->CollectionByName(db, n); meta && Replays(*meta)) return true;
  }
  return false;
}

void LogReader::RetireIdleChannels() {
  for (auto it = dml_.begin(); it != dml_.end();) {
    auto cc = channel_collections_.find(it->first);
    bool idle = (cc == channel_collections_.end() || cc->second.empty()) && it->second->Peek() == nullptr;
    if (!idle) {
      ++it;
      continue;
    }
    GetLogger("source")->info("pchannel {} has no collection of this task any more: stop reading it", it->first);
    it->second->Stop();
    std::lock_guard<std::mutex> lock(status_mu_);
    channel_collections_.erase(it->first);
    it = dml_.erase(it);
  }
}

Status LogReader::health() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  if (!health_.ok()) return health_;
  for (const auto& [name, r] : dml_) {
    if (Status h = r->health(); !h.ok()) return h;
  }
  if (replicate_) return replicate_->health();
  return Status::Ok();
}

Status LogReader::fatal() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return health_;
}

std::vector<ChannelStatus> LogReader::Channels() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  std::vector<ChannelStatus> out;
  auto add = [&](const std::string& name, const PackSource* r) {
    ChannelStatus cs;
    cs.channel = name;
    if (auto it = applied_.find(name); it != applied_.end()) cs.applied = it->second;
    if (r) {
      cs.active = true;
      cs.read_ts = r->watermark();
      cs.next_offset = r->next_offset();
      cs.high_watermark = r->high_watermark();
      if (Status h = r->health(); !h.ok()) cs.error = h.message();
    }
    out.push_back(std::move(cs));
  };
  for (const auto& [name, r] : dml_) add(name, r.get());
  if (replicate_) add(replicate_->topic(), replicate_.get());
  for (const auto& [name, pos] : applied_) {
    if (!dml_.count(name) && (!replicate_ || replicate_->topic() != name)) add(name, nullptr);
  }
  return out;
}

}  // namespace cdc::source
