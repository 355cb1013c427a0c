// Named test points: where a process test can have a process die (SIGKILL)
// or stall at an exact step, as RocksDB's test_util/sync_point.h does. They
// are present in every build and inert unless the one environment variable
// RDF_TEST_POINTS arms them, so production code reads no other test
// variable. Its value is a comma-separated list of entries:
//
//   name           kill the process the first time it reaches `name`
//   name@N         ... the N-th time (N >= 1)
//   name@N:sleep=MS  sleep MS milliseconds there instead (the N-th time)
//   name=VALUE     a value for TestPointValue(name) (a fake boot id, say)
//
// e.g. RDF_TEST_POINTS="updater.after_commit@3" or
// "receiver.before_welcome@2:sleep=7000,boot_id=after-restart".
// The points in use are listed in docs/testing.md.
#ifndef RDF_COMMON_BASE_TEST_POINT_H_
#define RDF_COMMON_BASE_TEST_POINT_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace rdf {

// Reached `name`: kills or sleeps when armed; a lookup in an empty table
// otherwise. Thread-safe.
void TestPoint(absl::string_view name);

// Whether RDF_TEST_POINTS names `name` (for a hook whose behaviour is more
// than kill or sleep, as the updater's crashes in map growth).
bool TestPointArmed(absl::string_view name);

// The value given as `name=VALUE`, if any.
std::optional<std::string> TestPointValue(absl::string_view name);

namespace test_point_internal {
// The parsed table from `spec` (RDF_TEST_POINTS's syntax); for the unit test.
// Returns an error message for a malformed spec, empty when valid.
std::string Arm(absl::string_view spec);
}  // namespace test_point_internal

}  // namespace rdf

#endif  // RDF_COMMON_BASE_TEST_POINT_H_
