// Writes the generated seed inputs of the fuzz corpus: real trails written
// by TrailWriter (in the format of segment_input.h), wire messages
// serialized from proto/wire.proto, checkpoint records, takeover epoch files
// and save point frames (in the format of save_point_input.h). The
// configuration seeds are text files kept by hand. Run from the source folder after a format change:
//   build/tests/make_fuzz_seeds tests/fuzz/corpus
// Files are named seed-<what>; they are rewritten, nothing else is touched.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit.pb.h"
#include "common/base/clock.h"
#include "common/lmdb/checkpoint.h"
#include "common/state/audit_record.h"
#include "common/state/save_point.h"
#include "common/testing/mem_file_system.h"
#include "common/trail/format.h"
#include "common/trail/writer.h"
#include "common/wire/wire.h"
#include "tests/fuzz/save_point_input.h"
#include "tests/fuzz/segment_input.h"
#include "wire.pb.h"

namespace rdf::fuzz {
namespace {

void WriteSeed(const std::filesystem::path& dir, const std::string& name,
               const std::string& bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

proto::AuditRecord Data(uint64_t txid, const char* volume, int i, size_t value_bytes) {
  proto::AuditRecord r;
  r.set_version(kAuditRecordVersion);
  r.set_time_us(1'700'000'000'000'000 + txid * 1000 + i);
  r.set_txid(txid);
  r.set_type(proto::DATA);
  r.set_volume(volume);
  r.set_file("LOAD");
  r.set_key(absl::StrCat(txid, ":", i));
  r.set_after(absl::StrCat(txid, ":", i, ":", std::string(value_bytes, 'v')));
  r.set_op(proto::INSERT);
  return r;
}

proto::AuditRecord Outcome(uint64_t txid, proto::RecordType type) {
  proto::AuditRecord r;
  r.set_version(kAuditRecordVersion);
  r.set_time_us(1'700'000'000'000'000 + txid * 1000 + 999);
  r.set_txid(txid);
  r.set_type(type);
  return r;
}

// A trail written by the real writer: `txns` transactions of `per_txn`
// DATA records (of about `value_bytes`) and a COMMIT each.
class Trail {
 public:
  explicit Trail(uint64_t segment_bytes = kSegmentBytes) {
    trail::WriterOptions wo;
    wo.dir = kTrailDir;
    wo.name = kTrailName;
    wo.segment_bytes = segment_bytes;
    wo.fs = &fs_;
    wo.clock = &clock_;
    wo.shared_end = false;
    absl::StatusOr<std::unique_ptr<trail::TrailWriter>> w = trail::TrailWriter::Open(wo);
    Check(w.status());
    writer_ = *std::move(w);
  }

  void Txns(int txns, int per_txn, size_t value_bytes) {
    for (int t = 0; t < txns; ++t) {
      const uint64_t txid = ++txid_;
      for (int i = 0; i < per_txn; ++i) {
        Append(Data(txid, i % 2 ? "$DATA02" : "$DATA01", i, value_bytes));
      }
      Append(Outcome(txid, proto::COMMIT));
    }
    Check(writer_->Sync());
  }

  void Append(const proto::AuditRecord& r) {
    Check(writer_->Append(++asn_, static_cast<uint8_t>(r.type()), EncodeAuditPayload(r),
                          r.time_us()));
  }

  void RemoveSegmentsBefore(uint64_t segment) { Check(writer_->RemoveSegmentsBefore(segment)); }

  // The trail's segment files as one fuzz input.
  std::string Input(uint8_t flags, uint8_t hint, size_t cut_last = 0) {
    absl::StatusOr<std::vector<std::string>> names = fs_.ListDir(kTrailDir);
    Check(names.status());
    SegmentInput in;
    in.flags = flags;
    in.hint = hint;
    bool first = true;
    for (const std::string& name : *names) {
      uint64_t n;
      if (!trail::ParseSegmentFileName(name, kTrailName, &n)) continue;
      if (first) in.first_segment = n;
      first = false;
      absl::StatusOr<std::string> bytes = fs_.Contents(JoinPath(kTrailDir, name));
      Check(bytes.status());
      in.segments.push_back(*std::move(bytes));
    }
    if (cut_last > 0) {
      // A torn tail: the last frame cut `cut_last` bytes short, zeros after.
      std::string& last = in.segments.back();
      const uint64_t end = writer_->durable_end().pos.offset;
      for (uint64_t i = end - cut_last; i < end; ++i) last[i] = 0;
    }
    return EncodeSegmentInput(in);
  }

 private:
  MemFileSystem fs_;
  FakeClock clock_;
  std::unique_ptr<trail::TrailWriter> writer_;
  uint64_t asn_ = 0;
  uint64_t txid_ = 0;
};

void SegmentSeeds(const std::filesystem::path& dir) {
  const uint8_t all = kFixHeaders | kFixFrames | kWithLimit | kWithHint;
  {
    Trail t;
    WriteSeed(dir, "seed-empty", t.Input(0, 0));
    WriteSeed(dir, "seed-empty-all-flags", t.Input(all, 0));
  }
  {
    Trail t;
    t.Txns(1, 2, 8);
    WriteSeed(dir, "seed-one-txn", t.Input(0, 0));
    WriteSeed(dir, "seed-one-txn-limit", t.Input(kWithLimit, 0));
    WriteSeed(dir, "seed-one-txn-all-flags", t.Input(all, 1));
    WriteSeed(dir, "seed-one-txn-torn", t.Input(kWithHint, 1, 7));
    WriteSeed(dir, "seed-one-txn-torn-nohint", t.Input(0, 0, 7));
    WriteSeed(dir, "seed-one-txn-append-own-segment", t.Input(kWithHint | 3 << 6, 2));
  }
  {
    Trail t;
    t.Txns(6, 3, 40);  // rolls over: several 1 KiB segments
    WriteSeed(dir, "seed-segments", t.Input(0, 0));
    WriteSeed(dir, "seed-segments-all-flags", t.Input(all, 5));
    WriteSeed(dir, "seed-segments-torn", t.Input(kWithHint | kWithLimit, 200, 30));
    WriteSeed(dir, "seed-segments-truncate", t.Input(kTruncate | kWithLimit, 5));
    WriteSeed(dir, "seed-segments-truncate-remove",
              t.Input(kTruncate | kRemoveOld | 2 << 6, 10));
    WriteSeed(dir, "seed-segments-remove", t.Input(kRemoveOld | 1 << 6, 0));
    t.RemoveSegmentsBefore(3);
    WriteSeed(dir, "seed-segments-retained", t.Input(kWithLimit | kWithHint, 3));
  }
  {
    Trail t;
    t.Txns(1, 1, 1500);  // a frame larger than a segment gets its own
    t.Txns(1, 1, 10);
    WriteSeed(dir, "seed-big-frame", t.Input(kWithLimit | kWithHint, 0));
  }
}

proto::WireRecord Wire(uint64_t asn, const proto::AuditRecord& r) {
  proto::WireRecord w;
  w.set_asn(asn);
  w.set_type(r.type());
  w.set_txid(r.txid());
  w.set_volume(r.volume());
  w.set_payload(EncodeAuditPayload(r));
  return w;
}

void WireSeeds(const std::filesystem::path& dir) {
  proto::WireMessage hello;
  hello.mutable_hello()->set_node("primary");
  hello.mutable_hello()->set_audit_end_asn(42);
  hello.mutable_hello()->set_audit_end_time_us(1'700'000'000'000'000);
  WriteSeed(dir, "seed-hello", wire::Encode(hello));

  proto::WireMessage welcome;
  welcome.mutable_welcome()->set_restart_asn(40);
  welcome.mutable_welcome()->set_next_seq(7);
  welcome.mutable_welcome()->set_save_point_asn(39);
  WriteSeed(dir, "seed-welcome", wire::Encode(welcome));

  proto::WireMessage batch;
  proto::Batch* b = batch.mutable_batch();
  b->set_seq(7);
  b->add_records()->CopyFrom(Wire(40, Data(12, "$DATA01", 0, 16)));
  b->add_records()->CopyFrom(Wire(41, Data(12, "$DATA02", 1, 16)));
  b->add_records()->CopyFrom(Wire(42, Outcome(12, proto::COMMIT)));
  b->set_read_through_asn(42);
  b->set_audit_end_asn(42);
  b->set_audit_end_time_us(1'700'000'000'012'999);
  WriteSeed(dir, "seed-batch", wire::Encode(batch));

  proto::WireMessage abort_batch;
  b = abort_batch.mutable_batch();
  b->set_seq(8);
  proto::AuditRecord comp = Data(13, "$DATA01", 0, 4);
  comp.set_compensation(true);
  comp.set_op(proto::DELETE);
  comp.clear_after();
  comp.set_before("13:0:vvvv");
  b->add_records()->CopyFrom(Wire(43, Data(13, "$DATA01", 0, 4)));
  b->add_records()->CopyFrom(Wire(44, comp));
  b->add_records()->CopyFrom(Wire(45, Outcome(13, proto::ABORT)));
  b->set_read_through_asn(50);
  WriteSeed(dir, "seed-batch-abort", wire::Encode(abort_batch));

  proto::WireMessage unknown_volume = batch;
  unknown_volume.mutable_batch()->mutable_records(0)->set_volume("$NOPE");
  WriteSeed(dir, "seed-batch-unknown-volume", wire::Encode(unknown_volume));

  proto::WireMessage empty_batch;
  empty_batch.mutable_batch()->set_seq(9);
  empty_batch.mutable_batch()->set_read_through_asn(60);
  WriteSeed(dir, "seed-batch-empty", wire::Encode(empty_batch));

  proto::WireMessage heartbeat;
  heartbeat.mutable_heartbeat()->set_audit_end_asn(60);
  heartbeat.mutable_heartbeat()->set_audit_end_time_us(1'700'000'000'100'000);
  heartbeat.mutable_heartbeat()->set_read_through_asn(60);
  heartbeat.mutable_heartbeat()->set_next_seq(10);
  WriteSeed(dir, "seed-heartbeat", wire::Encode(heartbeat));

  proto::WireMessage ack;
  ack.mutable_ack()->set_seq(9);
  ack.mutable_ack()->set_save_point_asn(60);
  WriteSeed(dir, "seed-ack", wire::Encode(ack));

  proto::WireMessage refuse;
  refuse.mutable_refuse()->set_reason(proto::Refuse::RESYNC);
  refuse.mutable_refuse()->set_text("expected batch 7");
  WriteSeed(dir, "seed-refuse", wire::Encode(refuse));

  proto::WireMessage old_version = hello;
  std::string bytes = wire::Encode(old_version);
  old_version.ParseFromString(bytes);
  old_version.set_version(2);
  WriteSeed(dir, "seed-bad-version", old_version.SerializeAsString());
}

}  // namespace

// Checkpoint records (fuzz_checkpoint_record: first half slot 0, second
// half slot 1): one record, two of different sequence, a clean one.
void CheckpointSeeds(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  auto record = [](uint64_t sequence, bool clean) {
    proto::LmdbCheckpoint r;
    r.set_version(1);
    r.set_sequence(sequence);
    r.set_txnid(40 + sequence);
    r.set_page_size(4096);
    r.set_meta_page(std::string(4096, '\x11'));
    r.set_boot_id("seed-boot");
    r.set_clean(clean);
    r.set_restart_segment(3);
    r.set_restart_offset(4096 * sequence);
    r.set_applied_asn(1000 * sequence);
    r.set_redo_from_asn(900 * sequence);
    return lmdb::EncodeCheckpointSlot(r);
  };
  const std::string a = record(1, false), b = record(2, false);
  WriteSeed(dir, "one_record", a + std::string(a.size(), '\0'));
  WriteSeed(dir, "two_records", a + b.substr(0, a.size()) + b.substr(a.size()));
  WriteSeed(dir, "clean_record", record(5, true) + record(4, false));
}

void TakeoverStateSeeds(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  WriteSeed(dir, "epoch", "epoch 3\nstarted_us 1796647629461978\n");
  WriteSeed(dir, "epoch_no_time", "epoch 1\n");
  WriteSeed(dir, "zero", "epoch 0\nstarted_us 1\n");
}

// A save point as the receiver takes it (ImageTrails::SavePoint): the MIT and
// two volume trails, `open` open transactions in txid order.
proto::SavePoint SeedSavePoint(uint64_t asn, int open) {
  proto::SavePoint sp;
  sp.set_version(kSavePointVersion);
  sp.set_asn(asn);
  sp.set_time_us(1'700'000'000'000'000 + asn);
  sp.set_audit_end_asn(asn + 5);
  sp.set_audit_end_time_us(1'700'000'000'000'000 + asn + 5);
  sp.set_asn_time_us(1'700'000'000'000'000 + asn - 1);
  sp.set_next_seq(asn / 10 + 1);
  sp.set_max_txid(100 + open);
  const char* trails[] = {kMasterImageTrail, "DATA01", "DATA02"};
  for (int i = 0; i < 3; ++i) {
    proto::TrailEnd* t = sp.add_trails();
    t->set_trail(trails[i]);
    t->set_segment(1 + i);
    t->set_offset(128 + 40 * asn);
    t->set_asn(asn - i);
    t->set_records(asn / 3);
    t->set_bytes(asn * 50);
  }
  for (int i = 0; i < open; ++i) {
    proto::OpenTransaction* o = sp.add_open();
    o->set_txid(100 + i);
    o->set_first_asn(asn - open + i);
    o->set_records(1 + i % 3);
  }
  if (open > 0) sp.set_oldest_open_asn(asn - open);
  return sp;
}

void SavePointSeeds(const std::filesystem::path& dir) {
  using namespace save_point;
  auto frame = [](const proto::SavePoint& sp) { return Frame{0, sp.SerializeAsString()}; };
  auto audit = [](uint64_t txid) {
    return Frame{static_cast<uint8_t>(proto::DATA),
                 EncodeAuditPayload(Data(txid, "$DATA01", 0, 8))};
  };
  // The published copy; kAim points it at its frame.
  auto copy = [](const proto::SavePoint& sp) { return PublishedCopy(sp, {}).SerializeAsString(); };
  WriteSeed(dir, "seed-none", EncodeSavePointInput({}));

  SavePointInput zero{kAim, 0, copy(SeedSavePoint(10, 0)), {frame(SeedSavePoint(10, 0))}};
  WriteSeed(dir, "seed-zero-open", EncodeSavePointInput(zero));

  SavePointInput one{kAim, 2, copy(SeedSavePoint(20, 1)),
                     {audit(100), audit(101), frame(SeedSavePoint(20, 1))}};
  WriteSeed(dir, "seed-one-open", EncodeSavePointInput(one));

  // Many open: the newest frame is larger than a segment (one of its own).
  SavePointInput many{kAim, 4, copy(SeedSavePoint(200, 120)),
                      {frame(SeedSavePoint(30, 2)), audit(102), frame(SeedSavePoint(40, 3)),
                       audit(103), frame(SeedSavePoint(200, 120))}};
  WriteSeed(dir, "seed-many-open", EncodeSavePointInput(many));
  SavePointInput torn = many;
  torn.flags = kTear;
  torn.selector = 5;
  WriteSeed(dir, "seed-many-open-torn", EncodeSavePointInput(torn));
  SavePointInput reject = many;
  reject.flags = kReject | kAim;
  reject.selector = 2;  // the oldest save point; aimed at it too
  WriteSeed(dir, "seed-reject", EncodeSavePointInput(reject));
  const std::string bytes = EncodeSavePointInput(many);
  WriteSeed(dir, "seed-many-open-truncated", bytes.substr(0, bytes.size() * 2 / 3));

  // A copy naming no frame (frame_segment 0) is read as it is.
  SavePointInput unframed = one;
  unframed.flags = 0;
  unframed.published = SeedSavePoint(20, 1).SerializeAsString();
  WriteSeed(dir, "seed-published-no-frame", EncodeSavePointInput(unframed));
  SavePointInput garbage = one;
  garbage.flags = 0;
  garbage.published = "\xff\xff\xff not a save point";
  WriteSeed(dir, "seed-published-garbage", EncodeSavePointInput(garbage));

  // Damaged newest frames: another version, a payload cut short.
  proto::SavePoint v2 = SeedSavePoint(50, 1);
  v2.set_version(2);
  SavePointInput bad_version{0, 0, "", {frame(SeedSavePoint(40, 1)), frame(v2)}};
  WriteSeed(dir, "seed-bad-version", EncodeSavePointInput(bad_version));
  SavePointInput aimed_v2{kAim, 1, copy(SeedSavePoint(50, 1)),
                          {frame(SeedSavePoint(40, 1)), frame(v2)}};
  WriteSeed(dir, "seed-published-names-other-version", EncodeSavePointInput(aimed_v2));
  const std::string whole = SeedSavePoint(60, 5).SerializeAsString();
  SavePointInput cut{kAim, 1, copy(SeedSavePoint(60, 5)),
                     {frame(SeedSavePoint(40, 1)), Frame{0, whole.substr(0, whole.size() - 3)}}};
  WriteSeed(dir, "seed-frame-cut-short", EncodeSavePointInput(cut));
}

}  // namespace rdf::fuzz

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (tests/fuzz/corpus)\n", argv[0]);
    return argc == 2 ? 0 : 2;
  }
  const std::filesystem::path corpus(argv[1]);
  rdf::fuzz::SegmentSeeds(corpus / "segment_reader");
  rdf::fuzz::WireSeeds(corpus / "wire_decode");
  rdf::fuzz::CheckpointSeeds(corpus / "checkpoint_record");
  rdf::fuzz::TakeoverStateSeeds(corpus / "takeover_state");
  rdf::fuzz::SavePointSeeds(corpus / "save_point");
  return 0;
}
