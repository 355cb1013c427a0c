// Audit records as trail payloads: the one encoding used in the primary's
// audit trail and in the backup's image trails. The frame carries the ASN
// and the record type (trail::Record::type == proto::RecordType); the
// payload is a serialized proto::AuditRecord with `version` set and `asn`
// left 0 (the frame's ASN is authoritative).
#ifndef RDF_COMMON_STATE_AUDIT_RECORD_H_
#define RDF_COMMON_STATE_AUDIT_RECORD_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "audit.pb.h"
#include "common/trail/reader.h"

namespace rdf {

inline constexpr uint32_t kAuditRecordVersion = 1;

// Serializes `r` (its asn field is not stored).
std::string EncodeAuditPayload(const proto::AuditRecord& r);
// Makes `*r` its own payload encoding (asn cleared, version set), so that it
// can be serialized in place (trail::TrailWriter::AppendWith) without a copy
// of its images.
void PrepareAuditPayload(proto::AuditRecord* r);

// The payload of `*r` with its after image taken from `after` (a view of the
// caller's value) instead of from the message, written in place by WriteTo
// (trail::TrailWriter::AppendWith): a large value is copied once, into the
// trail writer's buffer. The encoding is the one EncodeAuditPayload gives
// the record with `after` set (fields in number order). `*r` is prepared
// (PrepareAuditPayload), must not have `after` set, and loses its fields
// numbered above `after` (compensation, op, ddl, control) to this object.
// Both must outlive WriteTo.
class AuditPayload {
 public:
  AuditPayload(proto::AuditRecord* r, std::optional<absl::string_view> after);
  size_t size() const { return head_size_ + after_size_ + tail_size_; }
  void WriteTo(char* p) const;

 private:
  proto::AuditRecord* head_;
  proto::AuditRecord tail_;
  std::optional<absl::string_view> after_;
  size_t head_size_ = 0, after_size_ = 0, tail_size_ = 0;
};

// The images of an encoded record, as views into `payload` (absent when the
// record has none), read from the wire format without parsing or copying.
// kDataLoss when the bytes are not a well-formed AuditRecord encoding.
struct AuditImages {
  std::optional<absl::string_view> before;
  std::optional<absl::string_view> after;
};
absl::StatusOr<AuditImages> ScanAuditImages(absl::string_view payload);

// Decodes a trail record into an AuditRecord with asn filled from the frame.
// kDataLoss when the payload does not parse, its version is unknown, or its
// type disagrees with the frame's.
absl::StatusOr<proto::AuditRecord> DecodeAuditRecord(const trail::Record& rec);

// The routing facts of an encoded AuditRecord, read straight from the wire
// format without parsing (and copying) the images: what the extractor needs
// to filter and ship a record. Views point into the payload.
struct AuditHeader {
  uint32_t type = 0;  // proto::RecordType (0 when absent)
  int64_t time_us = 0;
  uint64_t txid = 0;
  absl::string_view volume;
  absl::string_view file;
};
// kDataLoss when the bytes are not a well-formed AuditRecord encoding.
// With `prefix`, `payload` may be only the start of an encoding (the first
// fragment of a large record): the scan stops at the first field after
// `file`. (Serializers write fields in number order, so the header fields
// come before the key and images.)
absl::StatusOr<AuditHeader> ScanAuditHeader(absl::string_view payload, bool prefix = false);

// Approximate bytes a record occupies in a trail (for limits and backlog).
size_t AuditRecordBytes(const proto::AuditRecord& r);

// "DATA INSERT tx 12 $DATA01/LOAD key=12:0" for messages and tests.
std::string DescribeAuditRecord(const proto::AuditRecord& r);

}  // namespace rdf

#endif  // RDF_COMMON_STATE_AUDIT_RECORD_H_
