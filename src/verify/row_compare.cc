#include "verify/row_compare.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

namespace cdc::verify {

namespace schemapb = milvus::proto::schema;

namespace {

// Vector bytes per row, or 0 when the column is not a dense vector with a usable dimension.
size_t VectorRowBytes(const schemapb::FieldData& c) {
  if (!c.has_vectors()) return 0;
  const int64_t dim = c.vectors().dim();
  if (dim <= 0) return 0;
  switch (c.vectors().data_case()) {
    case schemapb::VectorField::kFloatVector: return static_cast<size_t>(dim) * sizeof(float);
    case schemapb::VectorField::kBinaryVector: return static_cast<size_t>(dim + 7) / 8;
    case schemapb::VectorField::kFloat16Vector:
    case schemapb::VectorField::kBfloat16Vector: return static_cast<size_t>(dim) * 2;
    default: return 0;
  }
}

// The raw bytes of a dense-vector column (float vectors as their IEEE bits).
std::pair<const char*, size_t> VectorBytes(const schemapb::FieldData& c) {
  const auto& v = c.vectors();
  switch (v.data_case()) {
    case schemapb::VectorField::kFloatVector:
      return {reinterpret_cast<const char*>(v.float_vector().data().data()),
              static_cast<size_t>(v.float_vector().data_size()) * sizeof(float)};
    case schemapb::VectorField::kBinaryVector: return {v.binary_vector().data(), v.binary_vector().size()};
    case schemapb::VectorField::kFloat16Vector: return {v.float16_vector().data(), v.float16_vector().size()};
    case schemapb::VectorField::kBfloat16Vector: return {v.bfloat16_vector().data(), v.bfloat16_vector().size()};
    default: return {nullptr, 0};
  }
}

size_t ScalarRows(const schemapb::ScalarField& s) {
  switch (s.data_case()) {
    case schemapb::ScalarField::kBoolData: return s.bool_data().data_size();
    case schemapb::ScalarField::kIntData: return s.int_data().data_size();
    case schemapb::ScalarField::kLongData: return s.long_data().data_size();
    case schemapb::ScalarField::kFloatData: return s.float_data().data_size();
    case schemapb::ScalarField::kDoubleData: return s.double_data().data_size();
    case schemapb::ScalarField::kStringData: return s.string_data().data_size();
    case schemapb::ScalarField::kBytesData: return s.bytes_data().data_size();
    case schemapb::ScalarField::kArrayData: return s.array_data().data_size();
    case schemapb::ScalarField::kJsonData: return s.json_data().data_size();
    default: return 0;
  }
}

bool IsNull(const schemapb::FieldData& c, size_t row) {
  return row < static_cast<size_t>(c.valid_data_size()) && !c.valid_data(static_cast<int>(row));
}

void AppendBytes(const void* data, size_t n, std::string* out) {
  const uint64_t len = n;
  out->append(reinterpret_cast<const char*>(&len), sizeof(len));
  out->append(static_cast<const char*>(data), n);
}

template <typename T>
void AppendPod(T v, std::string* out) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

// JSON with sorted keys (nlohmann objects are ordered maps), or the bytes as they came when they
// do not parse.
std::string CanonicalJson(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return "\x01" + text;  // unparsable: compared as bytes, never equal to JSON
  return parsed.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// One element of a scalar column, canonically, as `type` (the declared type: Int8/Int16 are
// narrowed back from the int32 they travel as). False when the row is out of range.
bool AppendScalar(const schemapb::ScalarField& s, schemapb::DataType type, size_t row, std::string* out) {
  if (row >= ScalarRows(s)) return false;
  const int i = static_cast<int>(row);
  switch (s.data_case()) {
    case schemapb::ScalarField::kBoolData: AppendPod<uint8_t>(s.bool_data().data(i) ? 1 : 0, out); return true;
    case schemapb::ScalarField::kIntData: {
      const int32_t v = s.int_data().data(i);
      if (type == schemapb::Int8) AppendPod(static_cast<int8_t>(v), out);
      else if (type == schemapb::Int16) AppendPod(static_cast<int16_t>(v), out);
      else AppendPod(v, out);
      return true;
    }
    case schemapb::ScalarField::kLongData: AppendPod(s.long_data().data(i), out); return true;
    case schemapb::ScalarField::kFloatData: {
      uint32_t bits;
      const float f = s.float_data().data(i);
      std::memcpy(&bits, &f, sizeof(bits));
      AppendPod(bits, out);
      return true;
    }
    case schemapb::ScalarField::kDoubleData: {
      uint64_t bits;
      const double d = s.double_data().data(i);
      std::memcpy(&bits, &d, sizeof(bits));
      AppendPod(bits, out);
      return true;
    }
    case schemapb::ScalarField::kStringData: {
      const auto& v = s.string_data().data(i);
      AppendBytes(v.data(), v.size(), out);
      return true;
    }
    case schemapb::ScalarField::kBytesData: {
      const auto& v = s.bytes_data().data(i);
      AppendBytes(v.data(), v.size(), out);
      return true;
    }
    case schemapb::ScalarField::kJsonData: {
      const std::string canonical = CanonicalJson(s.json_data().data(i));
      AppendBytes(canonical.data(), canonical.size(), out);
      return true;
    }
    case schemapb::ScalarField::kArrayData: {
      const auto& element = s.array_data().data(i);
      const auto element_type = s.array_data().element_type();
      const size_t n = ScalarRows(element);
      AppendPod<int32_t>(element_type, out);
      AppendPod<uint64_t>(n, out);
      for (size_t k = 0; k < n; ++k) AppendScalar(element, element_type, k, out);
      return true;
    }
    default: return false;
  }
}

// FNV-1a, 64 bits: enough to tell whether one row changed between two reads.
uint64_t Fnv1a(const std::string& bytes) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

size_t ColumnRows(const schemapb::FieldData& column) {
  if (column.has_scalars()) return ScalarRows(column.scalars());
  if (!column.has_vectors()) return 0;
  if (column.vectors().has_sparse_float_vector()) return column.vectors().sparse_float_vector().contents_size();
  const size_t per_row = VectorRowBytes(column);
  return per_row == 0 ? 0 : VectorBytes(column).second / per_row;
}

void AppendCanonical(const schemapb::FieldData& column, size_t row, std::string* out) {
  AppendPod<int32_t>(column.type(), out);
  if (IsNull(column, row)) {
    out->push_back('N');
    return;
  }
  out->push_back('V');
  if (column.has_scalars()) {
    if (!AppendScalar(column.scalars(), column.type(), row, out)) out->push_back('?');
    return;
  }
  if (column.has_vectors() && column.vectors().has_sparse_float_vector()) {
    const auto& contents = column.vectors().sparse_float_vector().contents();
    if (row >= static_cast<size_t>(contents.size())) {
      out->push_back('?');
      return;
    }
    const auto& v = contents.Get(static_cast<int>(row));
    AppendBytes(v.data(), v.size(), out);
    return;
  }
  const size_t per_row = VectorRowBytes(column);
  const auto [data, size] = column.has_vectors() ? VectorBytes(column) : std::pair<const char*, size_t>{nullptr, 0};
  if (per_row == 0 || (row + 1) * per_row > size) {
    out->push_back('?');
    return;
  }
  AppendPod<int64_t>(column.vectors().dim(), out);
  AppendBytes(data + row * per_row, per_row, out);
}

bool SameValue(const schemapb::FieldData& a, size_t ra, const schemapb::FieldData& b, size_t rb) {
  if (a.type() != b.type()) return false;
  if (ra >= ColumnRows(a) || rb >= ColumnRows(b)) return false;
  if (IsNull(a, ra) || IsNull(b, rb)) return IsNull(a, ra) == IsNull(b, rb);
  // Fast paths for the bulky types; everything else through the canonical encoding.
  if (a.has_vectors() && b.has_vectors() && !a.vectors().has_sparse_float_vector()) {
    if (a.vectors().dim() != b.vectors().dim() || a.vectors().data_case() != b.vectors().data_case()) return false;
    const size_t per_row = VectorRowBytes(a);
    return std::memcmp(VectorBytes(a).first + ra * per_row, VectorBytes(b).first + rb * per_row, per_row) == 0;
  }
  if (a.has_scalars() && b.has_scalars()) {
    const auto& sa = a.scalars();
    const auto& sb = b.scalars();
    if (sa.data_case() != sb.data_case()) return false;
    if (sa.has_string_data()) return sa.string_data().data(static_cast<int>(ra)) == sb.string_data().data(static_cast<int>(rb));
    if (sa.has_long_data()) return sa.long_data().data(static_cast<int>(ra)) == sb.long_data().data(static_cast<int>(rb));
    if (sa.has_json_data() && sa.json_data().data(static_cast<int>(ra)) == sb.json_data().data(static_cast<int>(rb))) {
      return true;  // same bytes: no need to parse
    }
  }
  std::string ea;
  std::string eb;
  AppendCanonical(a, ra, &ea);
  AppendCanonical(b, rb, &eb);
  return ea == eb;
}

std::vector<int> MatchColumns(const target::Page& from, const target::Page& to) {
  std::vector<int> out(from.fields.size(), -1);
  for (size_t i = 0; i < from.fields.size(); ++i) {
    for (size_t j = 0; j < to.fields.size(); ++j) {
      if (to.fields[j].field_name() == from.fields[i].field_name()) {
        out[i] = static_cast<int>(j);
        break;
      }
    }
  }
  return out;
}

std::string FirstDifference(const target::Page& from, size_t rf, const target::Page& to, size_t rt,
                            const std::vector<int>& columns) {
  for (size_t i = 0; i < from.fields.size(); ++i) {
    const int j = i < columns.size() ? columns[i] : -1;
    if (j < 0) return from.fields[i].field_name();
    if (!SameValue(from.fields[i], rf, to.fields[static_cast<size_t>(j)], rt)) return from.fields[i].field_name();
  }
  return "";
}

uint64_t RowFingerprint(const target::Page& page, size_t row) {
  std::vector<size_t> order(page.fields.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t x, size_t y) { return page.fields[x].field_name() < page.fields[y].field_name(); });
  std::string bytes;
  for (size_t i : order) {
    const auto& name = page.fields[i].field_name();
    AppendBytes(name.data(), name.size(), &bytes);
    AppendCanonical(page.fields[i], row, &bytes);
  }
  return Fnv1a(bytes);
}

}  // namespace cdc::verify
