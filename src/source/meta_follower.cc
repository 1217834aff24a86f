#include "source/meta_follower.h"

#include <algorithm>
#include <thread>

#include "util/log.h"

namespace cdc::source {

MetaFollower::MetaFollower(EtcdClient* etcd, Catalog* catalog) : etcd_(etcd), catalog_(catalog) {}

MetaFollower::~MetaFollower() { Stop(); }

Status MetaFollower::Start() {
  RETURN_IF_ERROR(LoadAndWatch(true));
  repair_thread_ = std::thread([this] { RepairLoop(); });
  return Status::Ok();
}

void MetaFollower::RepairLoop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      repair_cv_.wait(lock, [this] { return stopped_ || needs_repair_; });
      if (stopped_) return;
      needs_repair_ = false;
    }
    Status repaired = LoadAndWatch(false);
    if (!repaired.ok()) {
      GetLogger("source")->warn("source etcd: cannot re-read after a broken watch: {}", repaired.message());
      std::unique_lock<std::mutex> lock(mu_);
      health_ = repaired;
      needs_repair_ = true;  // try again after a pause
      repair_cv_.wait_for(lock, std::chrono::seconds(2), [this] { return stopped_; });
    }
  }
}

Status MetaFollower::LoadAndWatch(bool initial) {
  std::lock_guard<std::mutex> watch_lock(watch_mu_);
  for (auto& w : watches_) w->Stop();
  watches_.clear();

  const auto prefixes = catalog_->WatchPrefixes();
  std::vector<Catalog::Kv> kvs;
  std::vector<int64_t> revisions;
  for (const auto& prefix : prefixes) {
    int64_t revision = 0;
    auto got = etcd_->GetPrefix(prefix, &revision);
    if (!got.ok()) return got.status().WithContext("cannot read the source metadata under " + prefix);
    for (auto& kv : *got) kvs.push_back(Catalog::Kv{std::move(kv.key), std::move(kv.value), kv.mod_revision});
    revisions.push_back(revision);
  }
  if (initial) {
    std::vector<std::string> problems;
    RETURN_IF_ERROR(catalog_->LoadSnapshot(kvs, &problems));
    for (const auto& p : problems) GetLogger("source")->warn("etcd metadata: {}", p);
  } else {
    // Values before tombstones (see OnEvents).
    std::stable_partition(kvs.begin(), kvs.end(), [](const Catalog::Kv& kv) { return !IsTombstone(kv.value); });
    std::vector<CatalogEvent> found;
    for (const auto& kv : kvs) {
      auto ev = catalog_->Put(kv.key, kv.value, kv.revision);
      found.insert(found.end(), ev.begin(), ev.end());
    }
    Queue(std::move(found));
  }
  for (size_t i = 0; i < prefixes.size(); ++i) {
    auto watch = etcd_->WatchPrefix(
        prefixes[i], revisions[i] + 1, [this](const std::vector<EtcdEvent>& ev, int64_t) { OnEvents(ev); },
        [this](const Status& st) { OnError(st); });
    if (!watch.ok()) return watch.status().WithContext("cannot watch the source metadata under " + prefixes[i]);
    watches_.push_back(std::move(watch).value());
  }
  std::lock_guard<std::mutex> lock(mu_);
  health_ = Status::Ok();
  return Status::Ok();
}

void MetaFollower::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  repair_cv_.notify_all();
  if (repair_thread_.joinable()) repair_thread_.join();
  std::lock_guard<std::mutex> watch_lock(watch_mu_);
  for (auto& w : watches_) w->Stop();
  watches_.clear();
}

Status MetaFollower::Refresh() {
  std::vector<CatalogEvent> found;
  for (const auto& prefix : catalog_->WatchPrefixes()) {
    auto got = etcd_->GetPrefix(prefix);
    if (!got.ok()) return got.status().WithContext("cannot re-read the source metadata under " + prefix);
    // Values before tombstones (see OnEvents).
    std::stable_partition(got->begin(), got->end(), [](const auto& kv) { return !IsTombstone(kv.value); });
    for (const auto& kv : *got) {
      auto ev = catalog_->Put(kv.key, kv.value, kv.mod_revision);
      found.insert(found.end(), ev.begin(), ev.end());
    }
  }
  Queue(std::move(found));
  return Status::Ok();
}

void MetaFollower::OnEvents(const std::vector<EtcdEvent>& raw_events) {
  // Within one transaction (one revision), values before removals: a collection renamed into
  // another database gets its new key and a tombstone on the old one in the same transaction.
  std::vector<EtcdEvent> events = raw_events;
  auto removal = [](const EtcdEvent& e) { return e.type != EtcdEvent::Type::kPut || IsTombstone(e.kv.value); };
  std::stable_sort(events.begin(), events.end(), [&](const EtcdEvent& a, const EtcdEvent& b) {
    if (a.kv.mod_revision != b.kv.mod_revision) return a.kv.mod_revision < b.kv.mod_revision;
    return !removal(a) && removal(b);
  });
  std::vector<CatalogEvent> found;
  for (const auto& e : events) {
    auto ev = e.type == EtcdEvent::Type::kPut ? catalog_->Put(e.kv.key, e.kv.value, e.kv.mod_revision)
                                              : catalog_->Delete(e.kv.key, e.kv.mod_revision);
    found.insert(found.end(), ev.begin(), ev.end());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    health_ = Status::Ok();
  }
  Queue(std::move(found));
}

void MetaFollower::OnError(const Status& st) {
  GetLogger("source")->warn("source etcd watch: {}", st.message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    health_ = st;
    if (stopped_ || st.code() != StatusCode::kFailedPrecondition) return;
  }

  // The watch ended (compacted history): read everything again and watch from there.
  // Not on this watch thread, which cannot stop itself: the repair thread does it.
  {
    std::lock_guard<std::mutex> lock(mu_);
    needs_repair_ = true;
  }
  repair_cv_.notify_all();
}

void MetaFollower::Queue(std::vector<CatalogEvent> events) {
  if (events.empty()) return;
  std::function<void()> notify;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& e : events) events_.push_back(std::move(e));
    notify = notify_;
  }
  if (notify) notify();
}

std::vector<CatalogEvent> MetaFollower::TakeEvents() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<CatalogEvent> out(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return out;
}

void MetaFollower::SetNotify(std::function<void()> notify) {
  std::lock_guard<std::mutex> lock(mu_);
  notify_ = std::move(notify);
}

Status MetaFollower::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

}  // namespace cdc::source
