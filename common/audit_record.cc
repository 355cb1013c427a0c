#include "common/audit_record.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"

namespace rdf {

std::string EncodeAuditPayload(const proto::AuditRecord& r) {
  proto::AuditRecord copy = r;
  copy.set_asn(0);
  copy.set_version(kAuditRecordVersion);
  return copy.SerializeAsString();
}

absl::StatusOr<proto::AuditRecord> DecodeAuditRecord(const trail::Record& rec) {
  proto::AuditRecord r;
  if (!r.ParseFromString(rec.payload)) {
    return absl::DataLossError(absl::StrCat("audit record at ",
                                            trail::ToString(rec.pos),
                                            " (asn ", rec.asn,
                                            ") does not parse"));
  }
  if (r.version() != kAuditRecordVersion) {
    return absl::DataLossError(absl::StrCat("audit record at ",
                                            trail::ToString(rec.pos),
                                            " has unknown version ",
                                            r.version()));
  }
  if (static_cast<uint8_t>(r.type()) != rec.type) {
    return absl::DataLossError(absl::StrCat(
        "audit record at ", trail::ToString(rec.pos), ": frame type ",
        rec.type, " disagrees with record type ", r.type()));
  }
  r.set_asn(rec.asn);
  return r;
}

size_t AuditRecordBytes(const proto::AuditRecord& r) {
  return trail::kFrameOverhead + 24 + r.volume().size() + r.file().size() +
         r.key().size() + r.before().size() + r.after().size();
}

std::string DescribeAuditRecord(const proto::AuditRecord& r) {
  std::string s = absl::StrCat(proto::RecordType_Name(r.type()));
  if (r.type() == proto::DATA) absl::StrAppend(&s, " ", proto::DataOp_Name(r.op()));
  if (r.type() == proto::DDL) absl::StrAppend(&s, " ", proto::DdlOp_Name(r.ddl()));
  absl::StrAppend(&s, " asn ", r.asn(), " tx ", r.txid());
  if (!r.volume().empty()) absl::StrAppend(&s, " ", r.volume(), "/", r.file());
  if (!r.key().empty()) absl::StrAppend(&s, " key=", absl::CHexEscape(r.key()));
  if (r.compensation()) absl::StrAppend(&s, " (compensation)");
  return s;
}

}  // namespace rdf
