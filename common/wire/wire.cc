#include "common/wire/wire.h"

#include "absl/strings/str_cat.h"

namespace rdf::wire {

std::string Encode(proto::WireMessage m) {
  m.set_version(kProtocolVersion);
  return m.SerializeAsString();
}

absl::StatusOr<proto::WireMessage> Decode(absl::string_view bytes, size_t max_bytes) {
  if (bytes.size() > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "oversized message: ", bytes.size(), " bytes, limit ", max_bytes));
  }
  proto::WireMessage m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed message: ", bytes.size(), " bytes that do not parse"));
  }
  if (m.version() != kProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "bad protocol version ", m.version(), " (this build speaks ", kProtocolVersion, ")"));
  }
  if (m.body_case() == proto::WireMessage::BODY_NOT_SET) {
    return absl::InvalidArgumentError("malformed message: no body");
  }
  return m;
}

std::string Endpoint(absl::string_view host, uint32_t port) {
  return absl::StrCat("tcp://", host, ":", port);
}

}  // namespace rdf::wire
