// Process status publication: each process writes its proto::ProcessStatus
// at least once a second to "<data_dir>/status/<process>.status" (binary
// proto, replaced by rename; not fsynced: it is live state, not a record),
// and the same as JSON in "<process>.json". The monitor and tests read them.
#ifndef RDF_COMMON_STATE_STATUS_FILE_H_
#define RDF_COMMON_STATE_STATUS_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "status.pb.h"

namespace rdf {

std::string StatusDir(const std::string& data_dir);
// A status with what every process sets first: version, node, process,
// state, time (from `clock`) and pid. The process adds its own fields.
proto::ProcessStatus NewProcessStatus(const std::string& node, const std::string& process,
                                      const std::string& state, Clock* clock);
absl::Status WriteStatus(const std::string& data_dir, const proto::ProcessStatus& s);
absl::StatusOr<proto::ProcessStatus> ReadStatus(const std::string& data_dir,
                                                const std::string& process);

}  // namespace rdf

#endif  // RDF_COMMON_STATE_STATUS_FILE_H_
