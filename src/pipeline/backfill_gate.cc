#include "pipeline/backfill_gate.h"

#include <algorithm>
#include <type_traits>

namespace cdc::pipeline {

namespace schemapb = milvus::proto::schema;

std::string GateKey(const target::PkValue& pk) {
  if (const auto* i = std::get_if<int64_t>(&pk)) return "i" + std::to_string(*i);
  return "s" + std::get<std::string>(pk);
}

namespace {

template <typename Repeated>
void KeepEach(Repeated* values, const std::vector<bool>& keep) {
  if (values->size() != static_cast<int>(keep.size())) return;  // not one value per row
  int out = 0;
  for (int i = 0; i < values->size(); ++i) {
    if (!keep[static_cast<size_t>(i)]) continue;
    if (out != i) values->SwapElements(out, i);
    ++out;
  }
  if constexpr (std::is_arithmetic_v<std::decay_t<decltype(values->Get(0))>>) {
    values->Truncate(out);
  } else {
    values->DeleteSubrange(out, values->size() - out);
  }
}

// Fixed-width vector bytes: `width` bytes per row.
void KeepBytes(std::string* bytes, size_t width, const std::vector<bool>& keep) {
  if (width == 0 || bytes->size() != width * keep.size()) return;
  size_t out = 0;
  for (size_t i = 0; i < keep.size(); ++i) {
    if (!keep[i]) continue;
    if (out != i) bytes->replace(out * width, width, *bytes, i * width, width);
    ++out;
  }
  bytes->resize(out * width);
}

}  // namespace

void KeepRows(std::vector<schemapb::FieldData>* columns, const std::vector<bool>& keep) {
  for (auto& col : *columns) {
    KeepEach(col.mutable_valid_data(), keep);
    if (col.has_scalars()) {
      // Only the set member of the oneof: mutable_x() on another one would switch it.
      auto* s = col.mutable_scalars();
      using SF = schemapb::ScalarField;
      switch (s->data_case()) {
        case SF::kBoolData: KeepEach(s->mutable_bool_data()->mutable_data(), keep); break;
        case SF::kIntData: KeepEach(s->mutable_int_data()->mutable_data(), keep); break;
        case SF::kLongData: KeepEach(s->mutable_long_data()->mutable_data(), keep); break;
        case SF::kFloatData: KeepEach(s->mutable_float_data()->mutable_data(), keep); break;
        case SF::kDoubleData: KeepEach(s->mutable_double_data()->mutable_data(), keep); break;
        case SF::kStringData: KeepEach(s->mutable_string_data()->mutable_data(), keep); break;
        case SF::kBytesData: KeepEach(s->mutable_bytes_data()->mutable_data(), keep); break;
        case SF::kArrayData: KeepEach(s->mutable_array_data()->mutable_data(), keep); break;
        case SF::kJsonData: KeepEach(s->mutable_json_data()->mutable_data(), keep); break;
        default: break;
      }
    } else if (col.has_vectors()) {
      auto* v = col.mutable_vectors();
      const size_t dim = static_cast<size_t>(v->dim());
      if (v->has_float_vector()) {
        auto* f = v->mutable_float_vector()->mutable_data();
        if (dim > 0 && static_cast<size_t>(f->size()) == dim * keep.size()) {
          size_t out = 0;
          for (size_t i = 0; i < keep.size(); ++i) {
            if (!keep[i]) continue;
            if (out != i) std::copy_n(f->begin() + static_cast<int>(i * dim), dim, f->begin() + static_cast<int>(out * dim));
            ++out;
          }
          f->Truncate(static_cast<int>(out * dim));
        }
      }
      if (v->data_case() == schemapb::VectorField::kBinaryVector) KeepBytes(v->mutable_binary_vector(), dim / 8, keep);
      if (v->data_case() == schemapb::VectorField::kFloat16Vector) KeepBytes(v->mutable_float16_vector(), dim * 2, keep);
      if (v->data_case() == schemapb::VectorField::kBfloat16Vector) KeepBytes(v->mutable_bfloat16_vector(), dim * 2, keep);
      if (v->has_sparse_float_vector()) KeepEach(v->mutable_sparse_float_vector()->mutable_contents(), keep);
    }
  }
}

uint64_t BackfillGate::OpenWindow(int64_t collection_id, uint64_t g) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_window_++;
  windows_[id] = Window{collection_id, g};
  touched_[collection_id];  // Watching() from now on
  return id;
}

std::pair<uint64_t, uint64_t> BackfillGate::OpenWindowAtApplied(int64_t collection_id,
                                                                const std::vector<std::string>& channels) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t g = 0;
  for (const auto& ch : channels) {
    auto a = applied_.find(ch);
    if (a == applied_.end() || a->second == 0) return {0, 0};
    g = std::max(g, a->second);
    if (auto p = applying_.find(ch); p != applying_.end()) g = std::max(g, p->second);
  }
  if (g == 0) return {0, 0};
  const uint64_t id = next_window_++;
  windows_[id] = Window{collection_id, g};
  touched_[collection_id];
  return {id, g};
}

void BackfillGate::CloseWindow(uint64_t window) {
  std::lock_guard<std::mutex> lock(mu_);
  CloseLocked(window);
}

void BackfillGate::CloseLocked(uint64_t window) {
  auto it = windows_.find(window);
  if (it == windows_.end()) return;
  const int64_t coll = it->second.collection_id;
  windows_.erase(it);
  // Keep only what a window still open on the collection may need: keys touched after its g.
  uint64_t min_g = UINT64_MAX;
  for (const auto& [id, w] : windows_) {
    if (w.collection_id == coll) min_g = std::min(min_g, w.g);
  }
  auto t = touched_.find(coll);
  if (t == touched_.end()) return;
  if (min_g == UINT64_MAX) {
    touched_.erase(t);
    return;
  }
  for (auto k = t->second.begin(); k != t->second.end();) k = k->second <= min_g ? t->second.erase(k) : std::next(k);
}

bool BackfillGate::Submit(BackfillChunk chunk, const std::atomic<bool>& stopping) {
  std::unique_lock<std::mutex> lock(mu_);
  space_.wait(lock, [&] { return stopping.load() || queue_.empty() || queued_bytes_ < max_queued_bytes_; });
  if (stopping) {
    CloseLocked(chunk.window);
    return false;
  }
  queued_bytes_ += chunk.rows.bytes;
  queue_.push_back(std::move(chunk));
  return true;
}

void BackfillGate::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.clear();
  queued_bytes_ = 0;
  windows_.clear();
  touched_.clear();
  space_.notify_all();
}

bool BackfillGate::Watching(int64_t collection_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return touched_.count(collection_id) > 0;
}

void BackfillGate::Touch(int64_t collection_id, const std::string& partition, const std::vector<std::string>& keys,
                         uint64_t ts) {
  std::lock_guard<std::mutex> lock(mu_);
  auto t = touched_.find(collection_id);
  if (t == touched_.end()) return;
  for (const auto& k : keys) {
    auto& newest = t->second[{partition, k}];
    newest = std::max(newest, ts);
  }
}

void BackfillGate::Applying(const std::string& channel, uint64_t ts) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& a = applying_[channel];
  a = std::max(a, ts);
}

void BackfillGate::Applied(const std::string& channel, uint64_t ts) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& a = applied_[channel];
  a = std::max(a, ts);
}

void BackfillGate::FilterLocked(BackfillChunk& chunk) const {
  auto t = touched_.find(chunk.collection_id);
  if (t == touched_.end() || t->second.empty()) return;
  // A chunk of the whole collection (no partition named) and a delete match a key touched in
  // any partition: the stream names the partition of every insert.
  std::set<std::string> anywhere;
  if (chunk.partition.empty() || !chunk.deletes.empty()) {
    for (const auto& [pk, ts] : t->second) {
      if (ts > chunk.g) anywhere.insert(pk.second);
    }
  }
  std::erase_if(chunk.deletes, [&](const target::PkValue& k) { return anywhere.count(GateKey(k)) > 0; });
  std::vector<bool> keep(chunk.rows.keys.size(), true);
  bool dropped = false;
  for (size_t i = 0; i < chunk.rows.keys.size(); ++i) {
    const std::string key = GateKey(chunk.rows.keys[i]);
    if (chunk.partition.empty()) {
      keep[i] = anywhere.count(key) == 0;
    } else {
      for (const std::string& part : {chunk.partition, std::string()}) {
        auto it = t->second.find({part, key});
        if (it != t->second.end() && it->second > chunk.g) keep[i] = false;
      }
    }
    dropped = dropped || !keep[i];
  }
  if (!dropped) return;
  KeepRows(&chunk.rows.fields, keep);
  std::vector<target::PkValue> kept;
  for (size_t i = 0; i < keep.size(); ++i) {
    if (keep[i]) kept.push_back(std::move(chunk.rows.keys[i]));
  }
  chunk.rows.keys = std::move(kept);
}

std::vector<BackfillChunk> BackfillGate::TakeReady(
    const std::function<std::vector<std::string>(int64_t)>& channels_of) {
  std::vector<BackfillChunk> out;
  std::lock_guard<std::mutex> lock(mu_);
  while (!queue_.empty()) {
    BackfillChunk& c = queue_.front();
    bool ready = true;  // h 0: a marker with no rows, ready as soon as it is first
    for (const auto& ch : c.h == 0 ? std::vector<std::string>{} : channels_of(c.collection_id)) {
      auto a = applied_.find(ch);
      ready = ready && a != applied_.end() && a->second >= c.h;
    }
    if (!ready) break;  // in order: a later chunk of the same range must not overtake
    FilterLocked(c);
    CloseLocked(c.window);
    queued_bytes_ -= c.rows.bytes;
    out.push_back(std::move(c));
    queue_.pop_front();
  }
  if (!out.empty()) space_.notify_all();
  return out;
}

size_t BackfillGate::queued_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_bytes_;
}

}  // namespace cdc::pipeline
