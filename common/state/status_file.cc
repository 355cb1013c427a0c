#include "common/state/status_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/base/file_system.h"
#include "common/base/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "common/layout/layout.h"

namespace rdf {

std::string StatusDir(const std::string& data_dir) { return layout::StatusDir(data_dir); }

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
  std::string json = StatusToJson(s) + "\n";
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

namespace {
// proto3's JSON mapping prints 64-bit integers as strings; our JSON keeps
// every number a JSON number (docs/status.md), so unquote those fields.
void CollectInt64Fields(const google::protobuf::Descriptor* d, std::set<std::string>* names) {
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    switch (f->cpp_type()) {
      case google::protobuf::FieldDescriptor::CPPTYPE_INT64:
      case google::protobuf::FieldDescriptor::CPPTYPE_UINT64:
        names->insert(f->name());
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE:
        CollectInt64Fields(f->message_type(), names);
        break;
      default:
        break;
    }
  }
}
}  // namespace

std::string ProtoToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(m, &json, o).ok()) return "{}";
  std::set<std::string> names;
  CollectInt64Fields(m.GetDescriptor(), &names);
  std::string out;
  out.reserve(json.size());
  size_t i = 0;
  while (i < json.size()) {
    // Look for "name":"digits"
    if (json[i] == '"') {
      size_t end = json.find('"', i + 1);
      if (end != std::string::npos && end + 2 < json.size() && json[end + 1] == ':' &&
          json[end + 2] == '"' && names.count(json.substr(i + 1, end - i - 1)) > 0) {
        size_t vend = json.find('"', end + 3);
        std::string v = json.substr(end + 3, vend - end - 3);
        if (!v.empty() && v.find_first_not_of("-0123456789") == std::string::npos) {
          out.append(json, i, end + 2 - i);
          out.append(v);
          i = vend + 1;
          continue;
        }
      }
      // A repeated 64-bit field: "name":["1","2"] -> "name":[1,2]
      if (end != std::string::npos && end + 2 < json.size() && json[end + 1] == ':' &&
          json[end + 2] == '[' && names.count(json.substr(i + 1, end - i - 1)) > 0) {
        size_t close = json.find(']', end + 3);
        if (close != std::string::npos &&
            json.find_first_not_of("-0123456789\",", end + 3) == close) {
          out.append(json, i, end + 3 - i);
          for (size_t j = end + 3; j < close; ++j) {
            if (json[j] != '"') out.push_back(json[j]);
          }
          out.push_back(']');
          i = close + 1;
          continue;
        }
      }
    }
    out.push_back(json[i++]);
  }
  return out;
}

std::string StatusToJson(const proto::ProcessStatus& s) { return ProtoToJson(s); }

}  // namespace rdf
