#include "verify/key_compare.h"

#include <algorithm>
#include <future>
#include <map>
#include <set>
#include <system_error>

#include "verify/row_compare.h"

namespace cdc::verify {

namespace {

// Sorts the page's rows by key and drops repeated keys (a query answers one row per key, but a
// page is input: do not trust it).
void OrderRows(Chunk* c) {
  const auto& keys = c->page.keys;
  c->order.resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) c->order[i] = static_cast<uint32_t>(i);
  std::stable_sort(c->order.begin(), c->order.end(), [&](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
  c->order.erase(std::unique(c->order.begin(), c->order.end(), [&](uint32_t a, uint32_t b) { return keys[a] == keys[b]; }),
                 c->order.end());
}

// Runs `fn` on its own thread (the next source page while the target is read); inline when no
// thread can be started.
template <typename Fn>
std::future<StatusOr<Chunk>> Start(Fn fn) {
  try {
    return std::async(std::launch::async, std::move(fn));
  } catch (const std::system_error&) {
    return std::async(std::launch::deferred, std::move(fn));
  }
}

size_t KeyBytes(const PkValue& k) {
  if (const auto* s = std::get_if<std::string>(&k)) return s->size() + 4;
  return 20;
}

}  // namespace

StatusOr<Chunk> ReadChunk(VerifySide* side, const Table& table, const std::optional<PkValue>& after,
                          const std::optional<PkValue>& upto, int64_t limit, const ReadOptions& options) {
  Chunk c;
  ASSIGN_OR_RETURN(c.page, side->ReadRange(table, after, upto, limit, options));
  OrderRows(&c);
  if (c.order.empty()) {
    c.end = true;
    return c;
  }
  const PkValue last = c.page.keys[c.order.back()];
  c.upto = last;
  ASSIGN_OR_RETURN(int64_t count, side->Count(table, after, last, options));
  if (count == static_cast<int64_t>(c.order.size())) return c;
  // The count disagrees: copies of keys (Milvus 2.3 keeps duplicate primary keys and counts them
  // against a page's limit, so such a page can even skip keys), or rows written meanwhile. Read
  // the range whole (no limit: complete and deduplicated) until two counts around it agree.
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(Page full, side->ReadRange(table, after, last, 0, options));
    ASSIGN_OR_RETURN(int64_t again, side->Count(table, after, last, options));
    c.page = std::move(full);
    OrderRows(&c);
    if (again == count) {  // stable around the read: what the count has beyond the keys are copies
      c.duplicates = std::max<int64_t>(0, again - static_cast<int64_t>(c.order.size()));
      return c;
    }
    if (attempt == 2) return c;  // still changing: its keys are compared, copies not counted
    count = again;
  }
}

KeyCompare::KeyCompare(VerifySide* source, VerifySide* target, const VerifierOptions& options, const CollectionRef& ref,
                       std::vector<Unit> units, int64_t first_row_limit, CollectionReport* report,
                       std::string* wait_warning)
    : source_(source),
      target_(target),
      options_(options),
      ref_(ref),
      units_(std::move(units)),
      rows_(options.level == "rows"),
      first_row_limit_(first_row_limit),
      report_(report),
      wait_warning_(wait_warning) {}

Status KeyCompare::Scan() {
  for (size_t u = 0; u < units_.size(); ++u) RETURN_IF_ERROR(ScanUnit(u));
  return Status::Ok();
}

void KeyCompare::Progress(int64_t rows) {
  report_->rows_compared += rows;
  if (options_.on_rows && rows > 0) options_.on_rows(ref_, rows);
}

int64_t KeyCompare::NextRowLimit(const Chunk& c, int64_t current) const {
  if (!rows_) return options_.key_page_rows;
  if (c.order.empty()) return current;
  const size_t per_row = std::max<size_t>(1, c.page.bytes / c.order.size());
  const int64_t want = static_cast<int64_t>(options_.row_page_bytes / per_row);
  return std::clamp<int64_t>(want, 16, std::min<int64_t>(current * 2, target::CollectionReader::kMaxPageRows));
}

Status KeyCompare::ScanUnit(size_t u) {
  const Unit& unit = units_[u];
  ReadOptions read;
  read.output_fields = rows_ ? std::vector<std::string>{"*"} : std::vector<std::string>{unit.source.pk_field};
  read.guarantee_ts = 1;  // no wait: the first pass may see a key in flight, the re-checks settle it
  int64_t limit = rows_ ? first_row_limit_ : options_.key_page_rows;
  auto read_source = [this, &unit, read](std::optional<PkValue> after, int64_t lim) -> StatusOr<Chunk> {
    if (!unit.on_source) {
      Chunk none;
      none.end = true;
      return none;
    }
    return ReadChunk(source_, unit.source, after, std::nullopt, lim, read);
  };
  std::optional<PkValue> lo;
  auto next = Start([&read_source, lo, limit] { return read_source(lo, limit); });
  for (;;) {
    StatusOr<Chunk> got = next.get();
    if (!got.ok()) return got.status().WithContext(source_->Name());
    const Chunk s = std::move(got).value();
    if (Cancelled()) return Unavailable("the run was stopped");
    limit = NextRowLimit(s, limit);
    const std::optional<PkValue> hi = s.end ? std::nullopt : s.upto;
    if (!s.end) next = Start([&read_source, hi, limit] { return read_source(hi, limit); });
    report_->source_rows += static_cast<int64_t>(s.order.size());
    report_->source_duplicates += s.duplicates;
    size_t i = 0;
    if (unit.on_target) {
      std::optional<PkValue> after = lo;
      for (;;) {
        auto t = ReadChunk(target_, unit.target, after, hi, limit, read);
        if (!t.ok()) return t.status().WithContext(target_->Name());
        if (t->end) break;
        report_->target_rows += static_cast<int64_t>(t->order.size());
        report_->target_duplicates += t->duplicates;
        Merge(u, *t, &i, s);
        after = t->upto;
        if (hi && *t->upto == *hi) break;  // the target's part of the range is read
        if (Cancelled()) return Unavailable("the run was stopped");
      }
    }
    int64_t missing = 0;
    for (; i < s.order.size(); ++i, ++missing) {
      const size_t row = s.order[i];
      Found(u, kMissing, s.page.keys[row], Fingerprint(s.page, row));
    }
    Progress(missing);
    if (s.end) return Status::Ok();
    lo = hi;
  }
}

// Merges target chunk `t` into source chunk `s` from source position *i: source keys before a
// target key are missing, target keys not in the source extra, common keys compared.
void KeyCompare::Merge(size_t u, const Chunk& t, size_t* i, const Chunk& s) {
  const std::vector<int> columns = rows_ ? MatchColumns(s.page, t.page) : std::vector<int>{};
  int64_t merged = 0;
  for (uint32_t trow : t.order) {
    const PkValue& tk = t.page.keys[trow];
    while (*i < s.order.size() && s.page.keys[s.order[*i]] < tk) {
      const size_t row = s.order[(*i)++];
      Found(u, kMissing, s.page.keys[row], Fingerprint(s.page, row));
      ++merged;
    }
    ++merged;
    if (*i < s.order.size() && s.page.keys[s.order[*i]] == tk) {
      const size_t row = s.order[(*i)++];
      if (!rows_) continue;
      const std::string field = FirstDifference(s.page, row, t.page, trow, columns);
      if (!field.empty()) Found(u, kDifferent, tk, Fingerprint(s.page, row), field);
    } else {
      Found(u, kExtra, tk, 0);
    }
  }
  Progress(merged);
}

uint64_t KeyCompare::Fingerprint(const Page& page, size_t row) const {
  if (!rows_) return 1;  // keys level: the source state is "present"
  return std::max<uint64_t>(1, RowFingerprint(page, row));
}

void KeyCompare::Found(size_t u, int kind, const PkValue& key, uint64_t fingerprint, const std::string& field) {
  if (candidates_.size() < options_.max_recheck_keys) {
    candidates_.push_back(Candidate{u, key, kind, fingerprint, field});
    return;
  }
  ++report_->unchecked;  // past the bound on memory: counted as found
  report_->diff.Add(kind, key, field);
}

Status KeyCompare::Recheck(Differences* out) {
  for (int g = 0; g < options_.generations; ++g) {
    std::map<size_t, std::vector<Candidate*>> pending;  // by unit
    for (auto& c : candidates_) {
      if (!c.confirmed && !c.resolved) pending[c.unit].push_back(&c);
    }
    if (pending.empty()) break;
    ++report_->generations;
    auto ts = source_->AllocTimestamp();
    if (!ts.ok()) return ts.status().WithContext("cannot take a source timestamp for the re-check");
    if (options_.applied_ts) {
      if (wait_warning_->empty()) {
        *wait_warning_ = WaitApplied(options_.applied_ts, *ts, options_.applied_wait, options_.applied_stall,
                                     options_.cancelled);
      }
      AddWarning(report_, *wait_warning_);
    }
    if (Cancelled()) return Unavailable("the run was stopped");
    for (auto& [u, list] : pending) {
      std::vector<Candidate*> batch;
      size_t bytes = 0;
      for (size_t k = 0; k < list.size(); ++k) {
        batch.push_back(list[k]);
        bytes += KeyBytes(list[k]->key);
        if (batch.size() >= options_.recheck_batch || bytes >= (256u << 10) || k + 1 == list.size()) {
          RETURN_IF_ERROR(RecheckBatch(u, batch, *ts));
          batch.clear();
          bytes = 0;
        }
      }
    }
  }
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(), [](const Candidate& c) { return c.resolved; }),
                    candidates_.end());
  for (const auto& c : candidates_) {
    if (c.confirmed) {
      out->Add(c.kind, c.key, c.field);
    } else {
      ++out->in_flux;
    }
  }
  return Status::Ok();
}

Status KeyCompare::RecheckBatch(size_t u, std::vector<Candidate*>& batch, uint64_t ts) {
  const Unit& unit = units_[u];
  std::vector<PkValue> keys;
  keys.reserve(batch.size());
  for (const auto* c : batch) keys.push_back(c->key);
  ReadOptions read;
  read.output_fields = rows_ ? std::vector<std::string>{"*"} : std::vector<std::string>{unit.source.pk_field};
  Page src;
  Page tgt;
  if (unit.on_source) {
    read.guarantee_ts = ts;  // the source as of at least H
    auto page = source_->ReadKeys(unit.source, keys, read);
    if (!page.ok()) return page.status().WithContext(source_->Name());
    src = std::move(page).value();
  }
  if (unit.on_target) {
    read.guarantee_ts = 0;  // Strong: every write the task had acknowledged
    auto page = target_->ReadKeys(unit.target, keys, read);
    if (!page.ok()) return page.status().WithContext(target_->Name());
    tgt = std::move(page).value();
  }
  std::map<PkValue, size_t> in_src;
  std::map<PkValue, size_t> in_tgt;
  for (size_t r = 0; r < src.keys.size(); ++r) in_src.emplace(src.keys[r], r);
  for (size_t r = 0; r < tgt.keys.size(); ++r) in_tgt.emplace(tgt.keys[r], r);
  const std::vector<int> columns = rows_ ? MatchColumns(src, tgt) : std::vector<int>{};
  for (Candidate* c : batch) {
    auto s = in_src.find(c->key);
    auto t = in_tgt.find(c->key);
    const uint64_t fingerprint = s == in_src.end() ? 0 : Fingerprint(src, s->second);
    int kind = -1;
    std::string field;
    if (s != in_src.end() && t != in_tgt.end()) {
      if (rows_) field = FirstDifference(src, s->second, tgt, t->second, columns);
      if (!field.empty()) kind = kDifferent;
    } else if (s != in_src.end()) {
      kind = kMissing;
    } else if (t != in_tgt.end()) {
      kind = kExtra;
    }
    if (kind < 0) {
      c->resolved = true;  // it was in flight
    } else if (fingerprint == c->fingerprint) {
      c->confirmed = true;  // the source row did not change, and the target still differs
      c->kind = kind;
      c->field = field;
    } else {
      c->fingerprint = fingerprint;  // the source changed: look again next round
      c->kind = kind;
      c->field = field;
    }
  }
  return Status::Ok();
}

Status KeyCompare::Repair() {
  RepairResult result;
  for (auto it = candidates_.begin(); it != candidates_.end();) {  // in-flux keys are not repaired
    it = it->confirmed ? std::next(it) : candidates_.erase(it);
  }
  std::set<PkValue> copy;
  std::set<PkValue> remove;
  for (const auto& c : candidates_) (c.kind == kExtra ? remove : copy).insert(c.key);
  for (const auto& k : copy) remove.erase(k);  // a key in the wrong partition: the copy puts it right
  result.copy_keys = static_cast<int64_t>(copy.size());
  result.delete_keys = static_cast<int64_t>(remove.size());
  result.partial = report_->unchecked > 0;
  if (copy.empty() && remove.empty()) {
    report_->repair = result;
    return Status::Ok();
  }
  if (!options_.repair_fn) {
    result.error = "no repair path is available";
    report_->repair = result;
    return Status::Ok();
  }
  Status st = options_.repair_fn(ref_, std::vector<PkValue>(copy.begin(), copy.end()),
                                 std::vector<PkValue>(remove.begin(), remove.end()));
  if (!st.ok()) {
    result.error = st.message();
    report_->repair = result;
    return Status::Ok();
  }
  // Verify the repaired keys again: each keeps its last source fingerprint, so a key whose
  // source row did not change and still differs is a difference after the repair.
  for (auto& c : candidates_) c.confirmed = false;
  RETURN_IF_ERROR(Recheck(&result.after));
  report_->repair = result;
  return Status::Ok();
}

}  // namespace cdc::verify
