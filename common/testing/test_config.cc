#include "common/testing/test_config.h"

#include "absl/strings/str_cat.h"

namespace rdf::testing {

absl::StatusOr<config::Config> TwoNodeConfig(const std::string& dir, std::string_view more) {
  return config::Parse(
      absl::StrCat(R"(
        system: "t"
        nodes { name: "primary" role: PRIMARY host: "127.0.0.1" data_dir: "p" key_file: "p.key" }
        nodes { name: "backup" role: BACKUP host: "127.0.0.1" audit_port: 17999 data_dir: "b" key_file: "b.key" }
      )", std::string(more)),
      dir + "/rdf.textproto");
}

}  // namespace rdf::testing
