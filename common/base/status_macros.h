// Small status helpers that Abseil 20220623 lacks.
#ifndef RDF_COMMON_BASE_STATUS_MACROS_H_
#define RDF_COMMON_BASE_STATUS_MACROS_H_

#include <cerrno>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#define RDF_CONCAT_INNER_(a, b) a##b
#define RDF_CONCAT_(a, b) RDF_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` (an absl::Status) is not OK.
#define RDF_RETURN_IF_ERROR(expr)                  \
  do {                                             \
    ::absl::Status rdf_status_ = (expr);           \
    if (!rdf_status_.ok()) return rdf_status_;     \
  } while (0)

// RDF_ASSIGN_OR_RETURN(lhs, expr): evaluates `expr` (an absl::StatusOr<T>);
// on error returns its status, otherwise moves the value into `lhs`, which may
// be a declaration (`auto x`) or an existing variable.
#define RDF_ASSIGN_OR_RETURN(lhs, expr) \
  RDF_ASSIGN_OR_RETURN_IMPL_(RDF_CONCAT_(rdf_statusor_, __LINE__), lhs, expr)
#define RDF_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

namespace rdf {

// Maps an errno value from a failed system call to the most specific status:
// ENOSPC/EDQUOT -> kResourceExhausted, ENOENT -> kNotFound, EEXIST ->
// kAlreadyExists, EACCES/EPERM -> kPermissionDenied, EIO -> kDataLoss is NOT
// used (I/O errors are kInternal: the data may be fine, the device is not),
// EAGAIN/EINTR -> kUnavailable, others -> kInternal. The message is
// "<context>: <strerror>".
absl::Status ErrnoToStatus(int err, absl::string_view context);

// Adds context in front of a status message, keeping its code.
absl::Status Annotate(const absl::Status& s, absl::string_view context);

}  // namespace rdf

#endif  // RDF_COMMON_BASE_STATUS_MACROS_H_
