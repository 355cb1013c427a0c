// This boot of the machine, to tell a process restart (the page cache
// survived) from a machine restart (it did not).
#ifndef RDF_COMMON_BASE_BOOT_ID_H_
#define RDF_COMMON_BASE_BOOT_ID_H_

#include <string>

namespace rdf {

// /proc/sys/kernel/random/boot_id, read once ("" when unreadable). The
// process tests play a power loss without a reboot (a file system shut down
// and mounted again) and say so with the test point value
// RDF_TEST_POINTS="boot_id=<id>" (common/base/test_point.h).
const std::string& BootId();

}  // namespace rdf

#endif  // RDF_COMMON_BASE_BOOT_ID_H_
