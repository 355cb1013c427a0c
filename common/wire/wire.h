// Encoding and checking of extractor <-> receiver messages (proto/wire.proto,
// docs/protocol.md). Both sides use these, and nothing else touches the
// wire format.
#ifndef RDF_COMMON_WIRE_WIRE_H_
#define RDF_COMMON_WIRE_WIRE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "wire.pb.h"

namespace rdf::wire {

inline constexpr uint32_t kProtocolVersion = 1;
// ZAP domain the receiver sets on its socket.
inline constexpr char kZapDomain[] = "rdf";

// Room a batch message needs around extractor.batch_bytes of records (the
// batch's fields, the per-record fields, protobuf framing): a fragment of a
// large record carries up to batch_bytes of payload. The configuration
// requires batch_bytes + this <= receiver.max_message_bytes.
inline constexpr uint32_t kMessageEnvelopeBytes = 4096;
// The smallest extractor.batch_bytes: the first fragment of a large record
// must hold the record's header fields (type, txid, volume, file), which the
// receiver checks against the routing fields before the rest arrives.
inline constexpr uint32_t kMinBatchBytes = 4096;

// Serializes `m` with version = kProtocolVersion.
std::string Encode(proto::WireMessage m);

// Parses and checks a message of at most `max_bytes`:
//   kResourceExhausted  larger than max_bytes ("oversized")
//   kInvalidArgument    does not parse, or has no body ("malformed")
//   kFailedPrecondition version != kProtocolVersion ("bad version")
absl::StatusOr<proto::WireMessage> Decode(absl::string_view bytes, size_t max_bytes);

// "tcp://host:port"
std::string Endpoint(absl::string_view host, uint32_t port);

}  // namespace rdf::wire

#endif  // RDF_COMMON_WIRE_WIRE_H_
