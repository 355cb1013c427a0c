// The two-node configuration in-process tests of the pipeline start from:
// "primary" (data_dir p) and "backup" (data_dir b, audit_port 17999), both
// on loopback, in `dir`, plus `more` (volumes, limits) in text format.
// Neither node's key file exists: tests that need CURVE write their own.
#ifndef RDF_COMMON_TESTING_TEST_CONFIG_H_
#define RDF_COMMON_TESTING_TEST_CONFIG_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/config/config.h"

namespace rdf::testing {

absl::StatusOr<config::Config> TwoNodeConfig(const std::string& dir, std::string_view more);

}  // namespace rdf::testing

#endif  // RDF_COMMON_TESTING_TEST_CONFIG_H_
