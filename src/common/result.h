// Result<T>: either a value of type T or a non-OK Status, in the manner of std::expected.
//
// Functions that produce a value and may fail return Result<T>; callers test ok() and then use
// value() or operator*. Accessing the value of a failed Result aborts: it is a programming
// error, not a runtime condition. Thread-safety: a value type, like Status.
#pragma once

#include <cassert>
#include <cstdlib>
#include <optional>
#include <utility>

#include "common/status.h"

namespace cairn {

template <typename T>
class [[nodiscard]] Result {
 public:
  // REQUIRES: !status.ok(). An OK status carries no value, so it cannot make a Result.
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Status::Internal("Result constructed from an OK status");
  }
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    CheckOk();
    return *value_;
  }
  const T& value() const& {
    CheckOk();
    return *value_;
  }
  T&& value() && {
    CheckOk();
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void CheckOk() const {
    if (!value_.has_value()) std::abort();
  }

  Status status_;  // OK exactly when value_ holds a value
  std::optional<T> value_;
};

}  // namespace cairn

#define CAIRN_CONCAT_INNER(a, b) a##b
#define CAIRN_CONCAT(a, b) CAIRN_CONCAT_INNER(a, b)

// CAIRN_ASSIGN_OR_RETURN(auto x, Expr()): evaluates Expr(), returns its Status on failure,
// otherwise moves the value into the declaration `x`.
#define CAIRN_ASSIGN_OR_RETURN(decl, expr) CAIRN_ASSIGN_OR_RETURN_IMPL(CAIRN_CONCAT(_cairn_r_, __LINE__), decl, expr)
#define CAIRN_ASSIGN_OR_RETURN_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  decl = std::move(tmp).value()
