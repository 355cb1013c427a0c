#include "common/state/status_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/base/file_system.h"
#include "common/base/status_macros.h"
#include "common/json/proto.h"
#include "common/layout/layout.h"

namespace rdf {

std::string StatusDir(const std::string& data_dir) { return layout::StatusDir(data_dir); }

proto::ProcessStatus NewProcessStatus(const std::string& node, const std::string& process,
                                      const std::string& state, Clock* clock) {
  proto::ProcessStatus st;
  st.set_version(1);
  st.set_node(node);
  st.set_process(process);
  st.set_state(state);
  st.set_time_us(clock->NowMicros());
  st.set_pid(getpid());
  return st;
}

absl::Status WriteStatus(const std::string& data_dir, const proto::ProcessStatus& s) {
  std::string dir = StatusDir(data_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string path = layout::StatusBinaryFile(dir, s.process());
  std::string tmp = absl::StrCat(path, ".tmp");
  std::string bytes = s.SerializeAsString();
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", tmp));
  ssize_t n = write(fd, bytes.data(), bytes.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(bytes.size())) return ErrnoToStatus(err, absl::StrCat("write ", tmp));
  if (rename(tmp.c_str(), path.c_str()) != 0) return ErrnoToStatus(errno, absl::StrCat("rename ", tmp));
  // The same as JSON, for people and scripts (jq, tests).
  std::string json_path = layout::StatusJsonFile(dir, s.process());
  std::string json = json::MessageToJson(s) + "\n";
  std::string json_tmp = json_path + ".tmp";
  fd = open(json_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", json_tmp));
  n = write(fd, json.data(), json.size());
  close(fd);
  if (n != static_cast<ssize_t>(json.size()) || rename(json_tmp.c_str(), json_path.c_str()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("write ", json_path));
  }
  return absl::OkStatus();
}

absl::StatusOr<proto::ProcessStatus> ReadStatus(const std::string& data_dir,
                                                const std::string& process) {
  std::string path = layout::StatusBinaryFile(StatusDir(data_dir), process);
  RDF_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(FileSystem::Default(), path));
  proto::ProcessStatus s;
  if (!s.ParseFromString(bytes)) return absl::DataLossError(absl::StrCat(path, " does not parse"));
  return s;
}

}  // namespace rdf
