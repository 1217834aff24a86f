// Canonical comparison of rows as Milvus returns them from a Query (columns of FieldData), for
// `verify` at the `rows` level. A row of the source page and a row of the target page are equal
// when every field of the source has the same value on the target, compared canonically:
// integers at their declared width (Int8/Int16 travel widened to int32), Float/Double and float
// vectors bit for bit (replication copies bits, so -0.0 differs from 0.0), VarChar and binary
// vectors byte for byte, arrays element by element, JSON and the dynamic field `$meta` as parsed
// JSON (key order does not matter; 1 and 1.0 stay different). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "schema.pb.h"
#include "target/collection_reader.h"

namespace cdc::verify {

// Rows in a column (0 for a column Milvus sent without data).
size_t ColumnRows(const milvus::proto::schema::FieldData& column);

// True when row `ra` of `a` and row `rb` of `b` hold the same value. Columns of different types,
// rows out of range and mismatched vector dimensions are different.
bool SameValue(const milvus::proto::schema::FieldData& a, size_t ra, const milvus::proto::schema::FieldData& b,
               size_t rb);

// Appends an unambiguous encoding of the value (type tag, length-prefixed bytes, JSON
// re-serialised with sorted keys): two values have the same encoding iff SameValue holds.
void AppendCanonical(const milvus::proto::schema::FieldData& column, size_t row, std::string* out);

// How one page's columns line up with another's: for each column of `from`, the column of `to`
// with the same name, or -1. Built once per page pair.
std::vector<int> MatchColumns(const target::Page& from, const target::Page& to);

// The first column (by `from`'s order) whose value differs between row `rf` of `from` and row `rt`
// of `to`, or an empty string when the rows are equal. A column `from` has and `to` lacks is a
// difference. `columns` comes from MatchColumns(from, to).
std::string FirstDifference(const target::Page& from, size_t rf, const target::Page& to, size_t rt,
                            const std::vector<int>& columns);

// A 64-bit fingerprint of a row's canonical encoding (columns in name order): tells whether a
// source row changed between two reads. Not for equality between sides (use FirstDifference).
uint64_t RowFingerprint(const target::Page& page, size_t row);

}  // namespace cdc::verify
