// GoogleTest matchers for absl::Status / absl::StatusOr (Abseil 20220623 has
// none): EXPECT_THAT(s, IsOk()); EXPECT_THAT(s, StatusIs(kDataLoss,
// HasSubstr("checksum"))); ASSERT_OK(expr); ASSERT_OK_AND_ASSIGN(lhs, expr).
#ifndef RDF_COMMON_TESTING_STATUS_MATCHERS_H_
#define RDF_COMMON_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s.ToString();
  return s.ok();
}

MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()),
                                       result_listener);
}

}  // namespace rdf::testing

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::rdf::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::rdf::testing::IsOk())
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(RDF_CONCAT_(rdf_sor_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  ASSERT_OK(tmp.status());                         \
  lhs = std::move(tmp).value()

#endif  // RDF_COMMON_TESTING_STATUS_MATCHERS_H_
