#include "common/base/boot_id.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "common/base/test_point.h"

namespace rdf {

const std::string& BootId() {
  static const std::string* const id = [] {
    if (std::optional<std::string> fake = TestPointValue("boot_id")) {
      return new std::string(*fake);
    }
    // A /proc file reports size 0: read it as a stream.
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string s;
    std::getline(in, s);
    return new std::string(absl::StripAsciiWhitespace(s));
  }();
  return *id;
}

}  // namespace rdf
