// rdf-trail-dump: prints the records of a trail (the primary's audit trail,
// the MIT or a volume's image trail), one line per record, for process tests
// and for people.
//
// It reads with no EndSource: to the physical end, treating a torn tail of
// the newest segment as the end, so it can read a trail while its writer
// runs. Damage anywhere else stops it: what was read is printed, then the
// kDataLoss message (naming file and offset) on stderr, and it exits 1.
//
// Frames whose type is a proto::RecordType are audit records. A frame of
// type kSavePointFrameType (the receiver's save points in the MIT) carries a
// proto::SavePoint. Any other type is printed as an opaque frame.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit.pb.h"
#include "common/state/audit_record.h"
#include "common/base/cli.h"
#include "common/base/file_system.h"
#include "common/trail/reader.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/reflection.h"
#include "imagetrail.pb.h"

namespace rdf {
namespace {

// The frame type of a receiver save point in the MIT (proto::SavePoint in
// proto/imagetrail.proto): outside the proto::RecordType range. Same value
// as kSavePointRecordType in common/state/save_point.h (being written with the
// receiver); switch to that constant once it is in.
constexpr uint8_t kSavePointFrameType = 16;

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string JsonMessage(const Message& m);

// One value of field `f` (element `i` when repeated) as JSON: numbers as
// numbers (64-bit ones too), bytes as hex strings, enums by name.
std::string JsonValue(const Message& m, const FieldDescriptor* f, int i) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrCat(rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrCat(rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return (rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f)) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int v = rep ? r->GetRepeatedEnumValue(m, f, i) : r->GetEnumValue(m, f);
      const auto* e = f->enum_type()->FindValueByNumber(v);
      return e != nullptr ? JsonString(e->name()) : absl::StrCat(v);
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      const std::string s = rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
      return f->type() == FieldDescriptor::TYPE_BYTES ? JsonString(Hex(s)) : JsonString(s);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return JsonMessage(rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f));
  }
  return "null";
}

// Every field of `m`, set or not (so readers always find the keys), in
// field order; an unset field with presence (proto3 `optional`) is null.
std::string JsonFields(const Message& m) {
  const Reflection* r = m.GetReflection();
  const auto* d = m.GetDescriptor();
  std::vector<std::string> parts;
  for (int k = 0; k < d->field_count(); ++k) {
    const FieldDescriptor* f = d->field(k);
    std::string v;
    if (f->is_repeated()) {
      std::vector<std::string> items;
      for (int i = 0; i < r->FieldSize(m, f); ++i) items.push_back(JsonValue(m, f, i));
      v = absl::StrCat("[", absl::StrJoin(items, ","), "]");
    } else if (f->has_presence() && !r->HasField(m, f)) {
      v = "null";
    } else {
      v = JsonValue(m, f, 0);
    }
    parts.push_back(absl::StrCat(JsonString(f->name()), ":", v));
  }
  return absl::StrJoin(parts, ",");
}

std::string JsonMessage(const Message& m) { return absl::StrCat("{", JsonFields(m), "}"); }

// The frame's own facts, first in every JSON line.
std::string JsonFrame(const trail::Record& rec) {
  return absl::StrCat("\"frame_type\":", rec.type, ",\"segment\":", rec.pos.segment,
                      ",\"offset\":", rec.pos.offset, ",\"bytes\":", rec.payload.size());
}

bool IsAuditType(uint8_t type) {
  return type != 0 && proto::RecordType_IsValid(type);
}

std::string OrDash(absl::string_view s) { return s.empty() ? "-" : std::string(s); }

// asn type txid volume file key before after comp, tab-separated.
std::string AuditLine(const proto::AuditRecord& a) {
  return absl::StrJoin(
      {absl::StrCat(a.asn()), proto::RecordType_Name(a.type()), absl::StrCat(a.txid()),
       OrDash(a.volume()), OrDash(a.file()), OrDash(Hex(a.key())),
       a.has_before() ? Hex(a.before()) : std::string("-"),
       a.has_after() ? Hex(a.after()) : std::string("-"),
       std::string(a.compensation() ? "1" : "0")},
      "\t");
}

std::string AuditJson(const trail::Record& rec, const proto::AuditRecord& a) {
  return absl::StrCat("{", JsonFrame(rec), ",", JsonFields(a), "}");
}

std::string SavePointLine(const trail::Record& rec, const proto::SavePoint& sp) {
  std::vector<std::string> trails, open;
  for (const proto::TrailEnd& t : sp.trails()) {
    trails.push_back(absl::StrCat(t.trail(), ":", t.segment(), ":", t.offset(), ":", t.asn()));
  }
  for (const proto::OpenTransaction& o : sp.open()) {
    open.push_back(absl::StrCat(o.txid(), ":", o.first_asn(), ":", o.records()));
  }
  return absl::StrCat(
      "SAVEPOINT asn=", sp.asn(), " frame_asn=", rec.asn, " version=", sp.version(),
      " time_us=", sp.time_us(), " audit_end_asn=", sp.audit_end_asn(),
      " audit_end_time_us=", sp.audit_end_time_us(), " asn_time_us=", sp.asn_time_us(),
      " oldest_open_asn=", sp.oldest_open_asn(), " next_seq=", sp.next_seq(),
      " trails=", trails.empty() ? "-" : absl::StrJoin(trails, ","),
      " open=", open.empty() ? "-" : absl::StrJoin(open, ","));
}

std::string SavePointJson(const trail::Record& rec, const proto::SavePoint& sp) {
  return absl::StrCat("{", JsonFrame(rec), ",\"type\":\"SAVEPOINT\",\"asn\":", rec.asn,
                      ",\"savepoint\":", JsonMessage(sp), "}");
}

struct Options {
  std::string dir, trail;
  uint64_t from_asn = 0, limit = 0;
  bool backwards = false, json = false, list = false;
};

class Dumper {
 public:
  explicit Dumper(const Options& o) : o_(o) {}

  // Prints one record. kDataLoss when it does not decode.
  absl::Status Print(const trail::Record& rec) {
    if (IsAuditType(rec.type)) {
      absl::StatusOr<proto::AuditRecord> a = DecodeAuditRecord(rec);
      if (!a.ok()) return a.status();
      Emit(o_.json ? AuditJson(rec, *a) : AuditLine(*a));
    } else if (rec.type == kSavePointFrameType) {
      proto::SavePoint sp;
      if (!sp.ParseFromString(rec.payload)) {
        return absl::DataLossError(absl::StrCat("save point at ", trail::ToString(rec.pos),
                                                " (asn ", rec.asn, ") does not parse"));
      }
      Emit(o_.json ? SavePointJson(rec, sp) : SavePointLine(rec, sp));
    } else {
      Emit(o_.json ? absl::StrCat("{", JsonFrame(rec), ",\"type\":\"FRAME\",\"asn\":",
                                  rec.asn, "}")
                   : absl::StrCat("FRAME asn=", rec.asn, " type=", rec.type,
                                  " bytes=", rec.payload.size()));
    }
    return absl::OkStatus();
  }

 private:
  void Emit(const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
  }
  const Options& o_;
};

absl::Status List(const Options& o) {
  absl::StatusOr<std::vector<trail::SegmentInfo>> segs =
      trail::ListSegments(FileSystem::Default(), o.dir, o.trail);
  if (!segs.ok()) return segs.status();
  for (const trail::SegmentInfo& s : *segs) {
    std::string line =
        o.json ? absl::StrCat("{\"segment\":", s.segment, ",\"first_asn\":", s.first_asn,
                              ",\"bytes\":", s.bytes, ",\"path\":", JsonString(s.path), "}")
               : absl::StrCat(s.segment, "\t", s.first_asn, "\t", s.bytes, "\t", s.path);
    std::puts(line.c_str());
  }
  return absl::OkStatus();
}

// Positions the reader where the dump starts.
absl::Status Position(const Options& o, trail::TrailReader* r) {
  if (!o.backwards) return o.from_asn > 0 ? r->SeekToAsn(o.from_asn) : absl::OkStatus();
  // Backwards from --from-asn: just past the newest record with ASN <= it.
  if (o.from_asn > 0 && o.from_asn < UINT64_MAX) return r->SeekToAsn(o.from_asn + 1);
  return r->SeekToEnd();
}

absl::Status Dump(const Options& o) {
  trail::ReaderOptions ro;
  ro.dir = o.dir;
  ro.name = o.trail;
  ro.limit = nullptr;  // to the physical end, tolerating a torn tail
  absl::StatusOr<std::unique_ptr<trail::TrailReader>> r = trail::TrailReader::Open(ro);
  if (!r.ok()) return r.status();
  if (absl::Status s = Position(o, r->get()); !s.ok()) return s;
  Dumper dumper(o);
  for (uint64_t n = 0; o.limit == 0 || n < o.limit; ++n) {
    absl::StatusOr<std::optional<trail::Record>> rec =
        o.backwards ? (*r)->Prev() : (*r)->Next();
    if (!rec.ok()) return rec.status();
    if (!rec->has_value()) break;
    if (absl::Status s = dumper.Print(**rec); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace rdf

int main(int argc, char** argv) {
  rdf::Options o;
  rdf::cli::Parser p(
      "rdf-trail-dump --dir DIR --trail NAME [--from-asn N] [--backwards] [--json] "
      "[--limit N] [--list]",
      "Prints the records of a trail (audit trail MAT, image trails MIT and DATA01...),\n"
      "one line per record, oldest first (or newest first with --backwards). Reads\n"
      "to the physical end: a torn tail of the newest segment ends the dump\n"
      "quietly; damage elsewhere prints what was read, then the error (file and\n"
      "offset) on stderr, and exits 1.\n"
      "\n"
      "Audit records, tab-separated:\n"
      "  asn type txid volume file key(hex) before(hex|-) after(hex|-) comp(0|1)\n"
      "Save points (frame type 16, in the MIT):\n"
      "  SAVEPOINT asn=N frame_asn=N ... trails=NAME:SEG:OFFSET:ASN,... "
      "open=TXID:FIRST_ASN:RECORDS,...\n"
      "--json: one object per line; numbers are JSON numbers, bytes hex strings,\n"
      "absent before/after null; every line has frame_type, segment, offset, asn.\n"
      "--list: one line per segment: segment first_asn bytes path.");
  p.AddString("dir", &o.dir, "folder holding the trail's segment files");
  p.AddString("trail", &o.trail, "trail name (MAT, MIT, DATA01, ...)");
  p.AddUint("from-asn", &o.from_asn,
            "start at the first record with ASN >= N (--backwards: the last with ASN <= N)");
  p.AddBool("backwards", &o.backwards, "newest record first");
  p.AddBool("json", &o.json, "one JSON object per line");
  p.AddUint("limit", &o.limit, "print at most N records (0: all)");
  p.AddBool("list", &o.list, "list the segments instead of the records");
  p.Require("dir");
  p.Require("trail");
  std::vector<std::string> rest = p.Parse(argc, argv);
  if (!rest.empty()) p.Fail(absl::StrCat("unexpected argument '", rest[0], "'"));

  absl::Status s = o.list ? rdf::List(o) : rdf::Dump(o);
  std::fflush(stdout);
  if (!s.ok()) {
    std::fprintf(stderr, "rdf-trail-dump: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
