// The configuration text of a small two-node test system, so that unit
// tests do not each copy it.
#ifndef RDF_COMMON_TESTING_TEST_CONFIG_H_
#define RDF_COMMON_TESTING_TEST_CONFIG_H_

#include <initializer_list>
#include <string>
#include <string_view>

namespace rdf::testing {

// System "t": node "primary" (data_dir "p") and node "backup" (data_dir
// "b", audit port 17999), both on 127.0.0.1, data directories relative to
// the configuration file's folder; `volumes` protected ("$DATA01", ...);
// `extra` appended as is (settings such as "purger { retain_count: 2 }").
inline std::string TwoNodeConfig(std::initializer_list<std::string_view> volumes,
                                 std::string_view extra = "") {
  std::string text =
      "system: \"t\"\n"
      "nodes { name: \"primary\" role: PRIMARY host: \"127.0.0.1\" data_dir: \"p\" "
      "key_file: \"p.key\" }\n"
      "nodes { name: \"backup\" role: BACKUP host: \"127.0.0.1\" audit_port: 17999 "
      "data_dir: \"b\" key_file: \"b.key\" }\n";
  for (std::string_view v : volumes) text.append("volumes { name: \"").append(v).append("\" }\n");
  text.append(extra);
  return text;
}

}  // namespace rdf::testing

#endif  // RDF_COMMON_TESTING_TEST_CONFIG_H_
