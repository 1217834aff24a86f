// Status and StatusOr: the error currency of milvus-cdc. Never thrown; every
// fallible function returns one. A Status carries a code (mapped to the API's
// 400/404/500 classes) and a message that names the problem.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace cdc {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the client's mistake -> API code 400
  kNotFound,         // unknown id -> API code 400
  kAlreadyExists,
  kFailedPrecondition,  // wrong state for the operation -> 400
  kUnavailable,         // a dependency is down or unreachable -> retriable
  kDeadlineExceeded,
  kResourceExhausted,  // a configured limit was hit
  kInternal,
  kUnimplemented,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy with "context: " prepended to the message.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Unimplemented(std::string m) { return {StatusCode::kUnimplemented, std::move(m)}; }

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}              // NOLINT: implicit by design
  StatusOr(Status status)  // NOLINT: implicit by design
      : status_(status.ok() ? Status(StatusCode::kInternal, "StatusOr constructed from an OK status")
                            : std::move(status)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace cdc

#define CDC_CONCAT_INNER(a, b) a##b
#define CDC_CONCAT(a, b) CDC_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not ok.
#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::cdc::Status _st = (expr);                \
    if (!_st.ok()) return _st;                 \
  } while (0)

// Declares `lhs` from a StatusOr expression, or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr)                               \
  auto CDC_CONCAT(_sor_, __LINE__) = (expr);                      \
  if (!CDC_CONCAT(_sor_, __LINE__).ok())                          \
    return CDC_CONCAT(_sor_, __LINE__).status();                  \
  lhs = std::move(CDC_CONCAT(_sor_, __LINE__)).value()
