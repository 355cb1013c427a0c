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
#include "common/base/cli.h"
#include "common/base/file_system.h"
#include "common/json/proto.h"
#include "common/state/audit_record.h"
#include "common/trail/reader.h"
#include "imagetrail.pb.h"

namespace rdf {
namespace {

// The frame type of a receiver save point in the MIT (proto::SavePoint in
// proto/imagetrail.proto): outside the proto::RecordType range. Same value
// as kSavePointRecordType in common/state/save_point.h (being written with the
// receiver); switch to that constant once it is in.
constexpr uint8_t kSavePointFrameType = 16;

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

// Every field of a record, set or not, so readers always find the keys: an
// unset proto3 `optional` (an audit record's before or after image) is null.
json::MessageOptions AllKeys() {
  json::MessageOptions o;
  o.unset_as_null = true;
  return o;
}

// Opens a record's JSON line with the frame's own facts.
json::Writer JsonFrame(const trail::Record& rec) {
  json::Writer w;
  w.BeginObject()
      .Field("frame_type", rec.type)
      .Field("segment", rec.pos.segment)
      .Field("offset", rec.pos.offset)
      .Field("bytes", rec.payload.size());
  return w;
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
  json::Writer w = JsonFrame(rec);
  json::WriteFields(a, AllKeys(), &w);
  return w.EndObject().str();
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
  json::Writer w = JsonFrame(rec);
  w.Field("type", "SAVEPOINT").Field("asn", rec.asn).Key("savepoint").BeginObject();
  json::WriteFields(sp, AllKeys(), &w);
  return w.EndObject().EndObject().str();
}

std::string FrameJson(const trail::Record& rec) {
  json::Writer w = JsonFrame(rec);
  return w.Field("type", "FRAME").Field("asn", rec.asn).EndObject().str();
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
      Emit(o_.json ? FrameJson(rec)
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
        o.json ? json::Writer()
                     .BeginObject()
                     .Field("segment", s.segment)
                     .Field("first_asn", s.first_asn)
                     .Field("bytes", s.bytes)
                     .Field("path", s.path)
                     .EndObject()
                     .str()
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
