#include "target/collection_reader.h"

#include <limits>

#include <nlohmann/json.hpp>

#include "milvus.pb.h"

namespace cdc::target {

namespace milvuspb = milvus::proto::milvus;
namespace commonpb = milvus::proto::common;
namespace schemapb = milvus::proto::schema;

std::string PkLiteral(const PkValue& pk) {
  if (const auto* i = std::get_if<int64_t>(&pk)) return std::to_string(*i);
  return nlohmann::json(std::get<std::string>(pk)).dump();  // quotes, backslashes and controls escaped
}

std::string PkText(const PkValue& pk) {
  if (const auto* i = std::get_if<int64_t>(&pk)) return std::to_string(*i);
  return std::get<std::string>(pk);
}

int PkColumn(const Page& page, const std::string& pk_field) {
  for (size_t i = 0; i < page.fields.size(); ++i) {
    if (page.fields[i].field_name() == pk_field) return static_cast<int>(i);
  }
  return -1;
}

CollectionReader::CollectionReader(MilvusClient* client, std::string db, std::string collection,
                                   std::string pk_field, bool varchar_pk)
    : client_(client),
      db_(std::move(db)),
      collection_(std::move(collection)),
      pk_field_(std::move(pk_field)),
      varchar_pk_(varchar_pk) {}

std::string CollectionReader::RangeExpr(const std::optional<PkValue>& after, const std::optional<PkValue>& upto) const {
  std::string expr;
  if (after) expr = pk_field_ + " > " + PkLiteral(*after);
  if (upto) expr += (expr.empty() ? "" : " and ") + pk_field_ + " <= " + PkLiteral(*upto);
  if (expr.empty()) expr = varchar_pk_ ? pk_field_ + " >= \"\"" : "";  // every row
  return expr;
}

StatusOr<Page> CollectionReader::Query(const std::string& expr, int64_t limit, const ReadOptions& options) const {
  milvuspb::QueryRequest req;
  req.set_db_name(db_);
  req.set_collection_name(collection_);
  req.set_expr(expr);
  for (const auto& f : options.output_fields) req.add_output_fields(f);
  for (const auto& p : options.partitions) req.add_partition_names(p);
  if (limit > 0) {
    auto* kv = req.add_query_params();
    kv->set_key("limit");
    kv->set_value(std::to_string(limit));
  }
  if (options.guarantee_ts > 0) {
    req.set_guarantee_timestamp(options.guarantee_ts);
    req.set_consistency_level(commonpb::Customized);
  } else {
    req.set_consistency_level(commonpb::Strong);
  }
  req.set_use_default_consistency(false);
  milvuspb::QueryResults resp;
  CallContext ctx(client_, db_);
  grpc::Status call = client_->stub()->Query(ctx.get(), req, &resp);  // before reading resp.status()
  RETURN_IF_ERROR(client_->CheckCall(call, resp.status(), "Query").WithContext(db_ + "." + collection_));
  Page page;
  page.fields.assign(std::make_move_iterator(resp.mutable_fields_data()->begin()),
                     std::make_move_iterator(resp.mutable_fields_data()->end()));
  for (const auto& f : page.fields) page.bytes += f.ByteSizeLong();
  const int pk = PkColumn(page, pk_field_);
  if (pk >= 0 && page.fields[pk].has_scalars()) {
    const auto& s = page.fields[pk].scalars();
    for (int64_t k : s.long_data().data()) page.keys.emplace_back(k);
    for (const auto& k : s.string_data().data()) page.keys.emplace_back(k);
  }
  return page;
}

StatusOr<Page> CollectionReader::ReadRange(const std::optional<PkValue>& after, const std::optional<PkValue>& upto,
                                           int64_t limit, const ReadOptions& options) const {
  return Query(RangeExpr(after, upto), std::min(limit, kMaxPageRows), options);
}

StatusOr<Page> CollectionReader::ReadKeys(const std::vector<PkValue>& keys, const ReadOptions& options) const {
  if (keys.empty()) return Page{};
  std::string expr = pk_field_ + " in [";
  for (size_t i = 0; i < keys.size(); ++i) expr += (i ? "," : "") + PkLiteral(keys[i]);
  expr += "]";
  // No limit: the list bounds the answer, and Milvus 2.3 counts every copy of a duplicated key
  // against a limit, so `limit = keys.size()` drops keys when some are duplicated.
  return Query(expr, 0, options);
}

StatusOr<int64_t> CollectionReader::Count(const std::optional<PkValue>& after, const std::optional<PkValue>& upto,
                                          const ReadOptions& options) const {
  ReadOptions o = options;
  o.output_fields = {"count(*)"};
  ASSIGN_OR_RETURN(Page page, Query(RangeExpr(after, upto), 0, o));
  if (page.fields.empty() || !page.fields[0].has_scalars() || page.fields[0].scalars().long_data().data_size() == 0) {
    return Internal("Query count(*) of " + db_ + "." + collection_ + " returned no count");
  }
  return page.fields[0].scalars().long_data().data(0);
}

StatusOr<bool> CollectionReader::Exists(const char* op, const PkValue& value, const ReadOptions& options) const {
  ReadOptions o = options;
  o.output_fields = {pk_field_};
  ASSIGN_OR_RETURN(Page probe, Query(pk_field_ + " " + op + " " + PkLiteral(value), 1, o));
  return !probe.keys.empty();
}

StatusOr<std::optional<std::string>> CollectionReader::First(const char* op, const std::string& value,
                                                            const ReadOptions& options) const {
  ReadOptions o = options;
  o.output_fields = {pk_field_};
  ASSIGN_OR_RETURN(Page probe, Query(pk_field_ + " " + op + " " + PkLiteral(value), 1, o));
  if (probe.keys.empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::get<std::string>(probe.keys[0]));
}

StatusOr<std::optional<PkValue>> CollectionReader::MaxKey(const ReadOptions& options) const {
  ReadOptions o = options;
  o.output_fields = {pk_field_};
  ASSIGN_OR_RETURN(Page first, ReadRange(std::nullopt, std::nullopt, 1, o));
  if (first.keys.empty()) return std::optional<PkValue>();
  if (!varchar_pk_) {
    ASSIGN_OR_RETURN(auto max, MaxIntKey(o));
    if (!max) return std::optional<PkValue>();
    return std::optional<PkValue>(*max);
  }
  ASSIGN_OR_RETURN(std::string max, MaxVarcharKey(o));
  return std::optional<PkValue>(std::move(max));
}

StatusOr<std::optional<int64_t>> CollectionReader::MaxIntKey(const ReadOptions& options) const {
  ASSIGN_OR_RETURN(Page first, ReadRange(std::nullopt, std::nullopt, 1, options));
  if (first.keys.empty()) return std::optional<int64_t>();
  int64_t lo = std::get<int64_t>(first.keys[0]);  // a key that exists
  int64_t hi = std::numeric_limits<int64_t>::max();
  while (lo < hi) {  // invariant: a key >= lo exists, none > hi
    const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);  // no signed overflow
    const int64_t mid = static_cast<int64_t>(static_cast<uint64_t>(lo) + span / 2 + span % 2);  // rounds up
    ASSIGN_OR_RETURN(bool found, Exists(">=", PkValue(mid), options));
    if (found) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return std::optional<int64_t>(lo);
}

namespace {

void AppendUtf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Code points without the surrogates, numbered densely so a binary search never lands on one.
constexpr uint32_t kSurrogates = 0x800;
uint32_t CodePointAt(uint32_t index) { return index < 0xD800 ? index : index + kSurrogates; }

}  // namespace

// Milvus compares strings bytewise, and UTF-8 keeps code point order, so the largest key M is
// found one character at a time: with the known prefix P of M, the largest c such that a key
// >= P+c exists is M's next character. The reads see later writes too (Milvus 2.3 has no
// snapshot read), so the answer is a ceiling: no smaller than any key the source held at the
// read time and still holds. A probe that finds a key beyond every key starting with P (one
// written meanwhile) ends the search with that key, which is such a ceiling.
StatusOr<std::string> CollectionReader::MaxVarcharKey(const ReadOptions& options) const {
  auto starts_with = [](const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; };
  std::string prefix;
  for (;;) {
    ASSIGN_OR_RETURN(auto greater, First(">", prefix, options));
    if (!greater) return prefix;  // a key >= prefix exists and none is greater
    if (!starts_with(*greater, prefix)) return *greater;
    std::optional<std::string> at_lo;  // the first key >= prefix + char(lo), once probed
    auto first_from = [&](uint32_t index) -> StatusOr<std::optional<std::string>> {
      std::string probe = prefix;
      AppendUtf8(probe, CodePointAt(index));
      return First(">=", probe, options);
    };
    uint32_t lo = 0;  // a key >= prefix + char(0) exists: `greater`
    uint32_t hi = 0x10FFFF - kSurrogates;
    ASSIGN_OR_RETURN(auto non_ascii, first_from(0x80));
    if (non_ascii) {
      lo = 0x80;
      at_lo = non_ascii;
    } else {
      hi = 0x7F;
    }
    while (lo < hi) {  // invariant: a key >= prefix+lo exists, none >= prefix+(hi+1)
      const uint32_t mid = lo + (hi - lo + 1) / 2;
      ASSIGN_OR_RETURN(auto found, first_from(mid));
      if (found) {
        lo = mid;
        at_lo = found;
      } else {
        hi = mid - 1;
      }
    }
    if (lo == 0) {  // only keys prefix + "\0…" (or they went meanwhile): this bounds them all
      AppendUtf8(prefix, 1);
      return prefix;
    }
    AppendUtf8(prefix, CodePointAt(lo));
    if (!starts_with(*at_lo, prefix)) return *at_lo;
  }
}

}  // namespace cdc::target
