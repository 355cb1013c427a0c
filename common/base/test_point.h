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
//
// An in-process test can instead hang a callback on a point
// (test_point_internal::SetCallback, as RocksDB's SyncPoint::SetCallBack):
// it runs each time the point is reached, and may throw (to leave the code
// there, as a kill would, and destroy what it was running) or set a stop
// flag.
#ifndef RDF_COMMON_BASE_TEST_POINT_H_
#define RDF_COMMON_BASE_TEST_POINT_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace rdf {

// Reached `name`: runs its callback if one is set, then kills or sleeps when
// armed; when nothing is armed, one relaxed atomic load and a lookup in an
// empty table. Thread-safe.
void TestPoint(absl::string_view name);

// Whether RDF_TEST_POINTS names `name`, or a callback is set on it (for a
// hook whose behaviour is more than kill or sleep, as the updater's crashes
// in map growth, or for work to do before the point, as flushing events).
bool TestPointArmed(absl::string_view name);

// The value given as `name=VALUE`, if any.
std::optional<std::string> TestPointValue(absl::string_view name);

namespace test_point_internal {
// The parsed table from `spec` (RDF_TEST_POINTS's syntax); for the unit test.
// Returns an error message for a malformed spec, empty when valid.
std::string Arm(absl::string_view spec);

// Test-only: `callback` runs (on the thread that reaches it) every time
// TestPoint(name) is reached, before any kill or sleep armed there; it
// replaces an earlier callback on `name`. It may throw: the exception leaves
// TestPoint, and the code around the point must then only be destroyed.
// It is called without any lock of this module held, so it may call
// SetCallback or ClearCallbacks itself.
void SetCallback(absl::string_view name, std::function<void()> callback);
// Removes every callback (a test's TearDown).
void ClearCallbacks();
}  // namespace test_point_internal

}  // namespace rdf

#endif  // RDF_COMMON_BASE_TEST_POINT_H_
