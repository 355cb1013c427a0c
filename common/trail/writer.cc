#include "common/trail/writer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "common/trail/reader.h"

namespace rdf::trail {
namespace {

// Append makes the buffer durable once this much is waiting, so memory stays
// bounded when callers append much and sync rarely (a huge transaction).
constexpr size_t kFlushBytes = 8 << 20;
// Buffers kept for reuse, so steady appends of small records allocate
// nothing. One that grew past kMaxSpareCapacity (a large record) is freed:
// kept, four of them held up to 64 MiB that nothing used (measured with
// bench/open_rss_bench.py and jemalloc's heap profile).
constexpr size_t kMaxSpares = 4;
constexpr size_t kMaxSpareCapacity = 1 << 20;
// Repair scans the bytes after the end in pieces this large.
constexpr size_t kScanBytes = 256 << 10;
// A new leader waits at most this share of a recent sync for the callers of
// the previous group to append again (see Gather), and never longer than
// kMaxGatherMicros.
constexpr int64_t kGatherDivisor = 2;
constexpr int64_t kMaxGatherMicros = 500;

// The leader writes zeros this far ahead of the data it syncs. fallocate
// leaves "unwritten" extents, and the first write into each block makes
// fdatasync commit an extent conversion to the file system's journal; zeroing
// ahead pays that once per this many bytes instead of on nearly every sync
// (measured: ~4800 instead of ~7800 fdatasync/s for 3 KiB groups). Zeros
// past the data are what readers take as the end anyway.
constexpr uint64_t kZeroAhead = 1 << 20;

const std::string& Zeros() {
  static const std::string* const zeros = new std::string(kZeroAhead, '\0');
  return *zeros;
}

// Durations for the group-commit heuristic only; never the Clock seam (a
// fake clock must not change how I/O is batched).
int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Appended frames not yet durable, all in one segment and contiguous.
struct Chunk {
  uint64_t segment = 0;
  uint64_t start = 0;  // file offset of data[0]
  std::string data;
  bool create = false;          // create the segment file first
  bool rewrite_header = false;  // rewrite the (empty) segment's header first
  SegmentHeader header;         // for create / rewrite_header
  uint64_t last_asn = 0;
  int64_t last_time_us = 0;
  uint64_t last_seq = 0;  // Append sequence number of its last frame
  uint64_t end() const { return start + data.size(); }
};

}  // namespace

struct TrailWriter::Impl {
  WriterOptions opts;
  std::unique_ptr<SharedEnd> own_end;
  EndPublisher* publisher = nullptr;
  std::atomic<uint64_t> fsyncs{0};

  mutable absl::Mutex mu;
  // Followers of attempt n wait on done_cv[n % 2], so the end of one attempt
  // wakes its own followers, not those already queued for the next.
  absl::CondVar done_cv[2];
  absl::CondVar idle_cv;  // no leader (TruncateTo waits on it)
  std::deque<Chunk> pending ABSL_GUARDED_BY(mu);
  std::vector<std::string> spares ABSL_GUARDED_BY(mu);
  size_t buffered ABSL_GUARDED_BY(mu) = 0;
  SegmentHeader append_header ABSL_GUARDED_BY(mu);  // of append_pos.segment
  Position append_pos ABSL_GUARDED_BY(mu);
  uint64_t last_asn ABSL_GUARDED_BY(mu) = 0;
  int64_t last_time_us ABSL_GUARDED_BY(mu) = 0;
  uint64_t appended_seq ABSL_GUARDED_BY(mu) = 0;
  uint64_t durable_seq ABSL_GUARDED_BY(mu) = 0;
  End durable ABSL_GUARDED_BY(mu);
  // Group commit: at most one leader writes and syncs at a time.
  bool leader ABSL_GUARDED_BY(mu) = false;
  uint64_t attempts_started ABSL_GUARDED_BY(mu) = 0;
  uint64_t attempts_done ABSL_GUARDED_BY(mu) = 0;
  uint64_t failed_end_seq ABSL_GUARDED_BY(mu) = 0;  // covered by `error`
  absl::Status error ABSL_GUARDED_BY(mu);  // until a Sync succeeds
  // Gathering: a new leader waiting for the previous group to append again.
  absl::CondVar gather_cv;
  uint64_t gather_want ABSL_GUARDED_BY(mu) = 0;  // 0: not gathering
  int in_sync ABSL_GUARDED_BY(mu) = 0;         // callers inside Sync
  uint64_t expected_group ABSL_GUARDED_BY(mu) = 0;  // committers per group
  int64_t avg_sync_us ABSL_GUARDED_BY(mu) = 0;  // moving average

  // The open segment file. Used by the leader with `mu` released; by Open
  // and TruncateTo, which exclude leaders.
  uint64_t file_segment = 0;
  std::unique_ptr<WritableFile> file;
  uint64_t file_limit = 0;  // allocated size: zeros never extend the file
  uint64_t zeroed_to = 0;   // bytes before it were written (data or zeros)

  std::string PathOf(uint64_t segment) const {
    return JoinPath(opts.dir, SegmentFileName(opts.name, segment));
  }

  // --- Creating segments -------------------------------------------------

  // Creates (or re-creates) a segment file: preallocated, header written
  // and synced, directory synced, all before any record in it is published.
  absl::StatusOr<std::unique_ptr<WritableFile>> CreateSegment(
      const SegmentHeader& h, uint64_t bytes) {
    RDF_ASSIGN_OR_RETURN(auto f, opts.fs->OpenWritable(PathOf(h.segment), true));
    RDF_RETURN_IF_ERROR(f->Truncate(0));  // no stale bytes from an earlier try
    RDF_RETURN_IF_ERROR(f->Allocate(bytes));
    RDF_RETURN_IF_ERROR(f->Write(0, EncodeHeader(h)));
    RDF_RETURN_IF_ERROR(f->Sync());
    fsyncs.fetch_add(1, std::memory_order_relaxed);
    RDF_RETURN_IF_ERROR(opts.fs->SyncDir(opts.dir));
    return f;
  }

  // `written_to`: bytes of the file known to be written (not unwritten
  // extents); `limit`: its preallocated size.
  void SwitchFile(uint64_t segment, std::unique_ptr<WritableFile> f,
                  uint64_t written_to, uint64_t limit) {
    if (file != nullptr) file->Close().IgnoreError();  // already synced
    file = std::move(f);
    file_segment = segment;
    zeroed_to = written_to;
    file_limit = limit;
  }

  // Writes zeros after `end` when the data comes near the zeroed part's end.
  // Leader only; nothing after `end` is on disk yet.
  absl::Status ZeroAhead(uint64_t end) {
    if (end + kZeroAhead / 2 <= zeroed_to) return absl::OkStatus();
    const uint64_t from = std::max(end, zeroed_to);
    const uint64_t to = std::min(file_limit, (end + kZeroAhead) & ~uint64_t{4095});
    if (to > from) {
      RDF_RETURN_IF_ERROR(file->Write(from, std::string_view(Zeros()).substr(0, to - from)));
    }
    zeroed_to = std::max(zeroed_to, to);
    return absl::OkStatus();
  }

  absl::Status UseSegment(uint64_t segment) {
    if (file != nullptr && file_segment == segment) return absl::OkStatus();
    RDF_ASSIGN_OR_RETURN(auto f, opts.fs->OpenWritable(PathOf(segment), false));
    // Not known how far it was written: zero ahead from the data's end.
    SwitchFile(segment, std::move(f), 0, opts.segment_bytes);
    return absl::OkStatus();
  }

  SegmentHeader NewHeader(uint64_t segment, uint64_t first_asn,
                          uint64_t prev_end) {
    return SegmentHeader{segment, first_asn, prev_end, opts.clock->NowMicros(),
                         opts.name};
  }

  // --- Appending -----------------------------------------------------------

  Chunk NewChunk(uint64_t segment, uint64_t start)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Chunk c;
    c.segment = segment;
    c.start = start;
    if (!spares.empty()) {
      c.data = std::move(spares.back());
      spares.pop_back();
    }
    return c;
  }

  // The chunk a frame of `frame_bytes` with `asn` goes into: rolls over to a
  // new segment when it does not fit (unless the segment is empty: a frame
  // bigger than a segment gets one of its own).
  Chunk& ChunkFor(uint64_t asn, uint64_t frame_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (append_pos.offset > kHeaderSize &&
        append_pos.offset + frame_bytes > opts.segment_bytes) {
      append_header = NewHeader(append_pos.segment + 1, asn, append_pos.offset);
      append_pos = {append_header.segment, kHeaderSize};
      Chunk c = NewChunk(append_pos.segment, kHeaderSize);
      c.create = true;
      c.header = append_header;
      pending.push_back(std::move(c));
      return pending.back();
    }
    if (append_pos.offset == kHeaderSize && asn < append_header.first_asn) {
      // An empty segment whose first ASN is too high (made by a rollover
      // whose record was lost in a crash): its header must say less.
      append_header.first_asn = asn;
      Chunk c = NewChunk(append_pos.segment, kHeaderSize);
      c.rewrite_header = true;
      c.header = append_header;
      pending.push_back(std::move(c));
      return pending.back();
    }
    // Invariant: the newest pending chunk, if any, ends at append_pos.
    if (!pending.empty() && pending.back().segment == append_pos.segment) {
      return pending.back();
    }
    pending.push_back(NewChunk(append_pos.segment, append_pos.offset));
    return pending.back();
  }

  absl::Status Append(uint64_t asn, uint8_t type, size_t payload_size,
                      absl::FunctionRef<void(char*)> fill, int64_t time_us, Position* at) {
    bool flush;
    {
      absl::MutexLock l(&mu);
      if (!error.ok()) return error;
      RDF_RETURN_IF_ERROR(CheckAppend(asn, type, payload_size));
      const uint64_t frame_bytes = kFrameOverhead + payload_size;
      Chunk& c = ChunkFor(asn, frame_bytes);
      if (at != nullptr) *at = Position{c.segment, c.end()};
      EncodeFrameWith(asn, type, payload_size, fill, &c.data);
      c.last_asn = asn;
      c.last_time_us = time_us;
      c.last_seq = ++appended_seq;
      append_pos.offset += frame_bytes;
      last_asn = asn;
      last_time_us = time_us;
      buffered += frame_bytes;
      flush = buffered >= kFlushBytes;
      if (gather_want != 0 && appended_seq - durable_seq >= gather_want) {
        gather_cv.Signal();
      }
    }
    // A failure here stays pending and is reported by the next call.
    if (flush) Sync().IgnoreError();
    return absl::OkStatus();
  }

  absl::Status CheckAppend(uint64_t asn, uint8_t type, size_t payload_size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (type == 0) return absl::InvalidArgumentError("record type 0");
    // Non-decreasing: a control frame (the receiver's save point) may carry
    // the ASN of the record just before it.
    if (asn < last_asn || (asn == last_asn && last_asn == 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trail ", opts.name, ": ASN ", asn, " below the last ASN ", last_asn));
    }
    if (payload_size > kMaxPayload) {
      return absl::InvalidArgumentError(
          absl::StrCat("payload of ", payload_size, " bytes is too large"));
    }
    return absl::OkStatus();
  }

  // --- Reading back --------------------------------------------------------

  absl::StatusOr<std::string> ReadPayload(const Position& at) {
    {
      absl::MutexLock l(&mu);
      while (true) {
        for (const Chunk& c : pending) {
          if (c.segment == at.segment && at.offset >= c.start && at.offset < c.end()) {
            return PayloadIn(std::string_view(c.data).substr(at.offset - c.start), at);
          }
        }
        // Not buffered: written, or in the batch a leader is writing (which
        // goes back to `pending` if it fails).
        if (!leader) break;
        idle_cv.Wait(&mu);
      }
    }
    // Written to its segment (perhaps not yet synced: the page cache has
    // it). Segments are removed only below what callers still hold.
    RDF_ASSIGN_OR_RETURN(auto f, opts.fs->OpenReadable(PathOf(at.segment)));
    char header[kFrameHeaderSize];
    RDF_ASSIGN_OR_RETURN(size_t n, f->Read(at.offset, kFrameHeaderSize, header));
    if (n != kFrameHeaderSize) return BadFrame(at, "cut short");
    const FrameHeader h = DecodeFrameHeader(header);
    if (h.length > kMaxPayload) return BadFrame(at, "length too large");
    // Payload and trailer read in place: one copy of a large record.
    std::string payload(uint64_t{h.length} + kFrameTrailerSize, '\0');
    RDF_ASSIGN_OR_RETURN(n, f->Read(at.offset + kFrameHeaderSize, payload.size(), payload.data()));
    if (n != payload.size()) return BadFrame(at, "cut short");
    const uint32_t trailer = DecodeFixed32(payload.data() + h.length);
    payload.resize(h.length);
    const char* bad = CheckFrame(std::string_view(header, kFrameHeaderSize), payload, trailer);
    if (bad != nullptr) return BadFrame(at, bad);
    return payload;
  }

  // The payload of the frame at the start of `bytes`, checked.
  absl::StatusOr<std::string> PayloadIn(std::string_view bytes, const Position& at) const {
    if (bytes.size() < kFrameOverhead) return BadFrame(at, "cut short");
    const FrameHeader h = DecodeFrameHeader(bytes.data());
    if (bytes.size() < kFrameOverhead + uint64_t{h.length}) return BadFrame(at, "cut short");
    const std::string_view payload = bytes.substr(kFrameHeaderSize, h.length);
    const char* bad = CheckFrame(bytes.substr(0, kFrameHeaderSize), payload,
                                 DecodeFixed32(bytes.data() + kFrameHeaderSize + h.length));
    if (bad != nullptr) return BadFrame(at, bad);
    return std::string(payload);
  }

  absl::Status BadFrame(const Position& at, absl::string_view why) const {
    return absl::DataLossError(absl::StrCat("trail ", opts.name, ": the frame at ",
                                            ToString(at), " (", PathOf(at.segment),
                                            ") read back bad: ", why));
  }

  // --- Group commit --------------------------------------------------------

  absl::Status Sync() {
    absl::MutexLock l(&mu);
    const uint64_t target = appended_seq;
    if (durable_seq >= target) return absl::OkStatus();
    ++in_sync;
    absl::Status s = SyncTo(target);
    --in_sync;
    return s;
  }

  absl::Status SyncTo(uint64_t target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (durable_seq < target) {
      if (!leader) return Lead(target);
      // Follow: wait for the running attempt. If an attempt that covered our
      // records failed, its error is ours; if none covered them, lead next.
      const uint64_t attempt = attempts_started;
      while (attempts_done < attempt) done_cv[attempt % 2].Wait(&mu);
      if (durable_seq < target && !error.ok() && failed_end_seq >= target) {
        return error;
      }
    }
    return absl::OkStatus();
  }

  // Group commit on few cores: when a sync ends, the callers it released
  // need a moment to append their next records; a leader elected at once
  // syncs only those that were already waiting, and the committers settle
  // into two half-size groups taking turns. So a leader holding records of
  // fewer than about the number of committers (the callers inside Sync when
  // the last sync ended) waits a fraction of a sync for the others. A lone
  // committer never waits; a group that does not come shrinks the estimate.
  void Gather() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (expected_group < 3) return;
    const uint64_t want = expected_group * 3 / 4;
    const int64_t budget = std::min(avg_sync_us / kGatherDivisor, kMaxGatherMicros);
    const int64_t deadline = SteadyMicros() + budget;
    gather_want = want;
    while (appended_seq - durable_seq < want) {
      const int64_t left = deadline - SteadyMicros();
      if (left <= 0) break;
      gather_cv.WaitWithTimeout(&mu, absl::Microseconds(left));
    }
    gather_want = 0;
    expected_group = std::min(expected_group, appended_seq - durable_seq);
  }

  // Writes and syncs everything pending with `mu` released, then publishes.
  // Appends meanwhile go to fresh chunks. On failure the unwritten chunks go
  // back to the front of the queue, to be retried by the next Sync.
  absl::Status Lead(uint64_t target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    leader = true;
    ++attempts_started;
    Gather();
    std::deque<Chunk> batch;
    batch.swap(pending);
    const uint64_t end_seq = batch.back().last_seq;
    mu.Unlock();
    size_t done = 0;
    const int64_t start_us = SteadyMicros();
    absl::Status s = WriteBatch(batch, &done);
    const int64_t took_us = SteadyMicros() - start_us;
    End end;
    if (done > 0) {
      const Chunk& last = batch[done - 1];
      end = {last.last_asn, {last.segment, last.end()}, last.last_time_us};
      if (publisher != nullptr) publisher->Publish(end);
    }
    mu.Lock();
    if (done > 0) {
      durable = end;
      durable_seq = batch[done - 1].last_seq;
    }
    for (size_t i = 0; i < done; ++i) Recycle(std::move(batch[i].data));
    if (s.ok()) {
      error = absl::OkStatus();
      expected_group = static_cast<uint64_t>(in_sync);
      avg_sync_us = (avg_sync_us * 7 + took_us) / 8;
    } else {
      error = s;
      failed_end_seq = end_seq;
      pending.insert(pending.begin(), std::make_move_iterator(batch.begin() + done),
                     std::make_move_iterator(batch.end()));
    }
    leader = false;
    ++attempts_done;
    done_cv[attempts_done % 2].SignalAll();
    idle_cv.SignalAll();
    return durable_seq >= target ? absl::OkStatus() : s;
  }

  void Recycle(std::string data) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    buffered -= data.size();
    if (spares.size() >= kMaxSpares || data.capacity() > kMaxSpareCapacity) return;
    data.clear();
    spares.push_back(std::move(data));
  }

  // Leader only. Counts in *done the chunks that are durable.
  absl::Status WriteBatch(std::deque<Chunk>& batch, size_t* done) {
    for (Chunk& c : batch) {
      if (c.create) {
        const uint64_t bytes = std::max<uint64_t>(opts.segment_bytes, c.end());
        RDF_ASSIGN_OR_RETURN(auto f, CreateSegment(c.header, bytes));
        SwitchFile(c.segment, std::move(f), kHeaderSize, bytes);
        c.create = false;
      }
      RDF_RETURN_IF_ERROR(UseSegment(c.segment));
      if (c.rewrite_header) {
        RDF_RETURN_IF_ERROR(file->Write(0, EncodeHeader(c.header)));
        RDF_RETURN_IF_ERROR(SyncFile());
        c.rewrite_header = false;
      }
      // Rewritten whole on a retry: after a failed fdatasync the kernel may
      // have dropped the dirty pages, so syncing again alone proves nothing.
      RDF_RETURN_IF_ERROR(file->Write(c.start, c.data));
      RDF_RETURN_IF_ERROR(ZeroAhead(c.end()));
      RDF_RETURN_IF_ERROR(SyncFile());
      ++*done;
    }
    return absl::OkStatus();
  }

  absl::Status SyncFile() {
    fsyncs.fetch_add(1, std::memory_order_relaxed);
    return file->Sync();
  }

  // --- Open and repair -----------------------------------------------------

  absl::StatusOr<SegmentHeader> ReadSegmentHeader(uint64_t segment) {
    const std::string path = PathOf(segment);
    RDF_ASSIGN_OR_RETURN(auto f, opts.fs->OpenReadable(path));
    std::string bytes(kHeaderSize, '\0');
    RDF_ASSIGN_OR_RETURN(size_t n, f->Read(0, kHeaderSize, bytes.data()));
    bytes.resize(n);
    absl::StatusOr<SegmentHeader> h = DecodeHeader(bytes);
    if (!h.ok()) {
      return absl::DataLossError(
          absl::StrCat(path, " offset 0: ", h.status().message()));
    }
    if (h->segment != segment || h->name != opts.name) {
      return absl::DataLossError(absl::StrCat(
          path, " offset 0: header names ", h->name, " segment ", h->segment));
    }
    return h;
  }

  absl::StatusOr<std::vector<uint64_t>> SegmentNumbers() {
    RDF_ASSIGN_OR_RETURN(auto names, opts.fs->ListDir(opts.dir));
    std::vector<uint64_t> out;
    for (const std::string& n : names) {
      uint64_t s;
      if (ParseSegmentFileName(n, opts.name, &s)) out.push_back(s);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Starts an empty trail (or restarts one whose only segment was torn).
  absl::Status StartFresh(uint64_t segment) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    SegmentHeader h = NewHeader(segment, opts.first_asn, 0);
    RDF_ASSIGN_OR_RETURN(auto f, CreateSegment(h, opts.segment_bytes));
    SwitchFile(segment, std::move(f), kHeaderSize, opts.segment_bytes);
    append_header = h;
    append_pos = {segment, kHeaderSize};
    durable = End{0, append_pos, 0};
    return absl::OkStatus();
  }

  // Finds the end of the trail, cuts a torn tail, and opens the newest
  // segment for appending. `hint` is the last published end (segment 0 when
  // unknown). See trail_writer.h for what is torn and what is damage.
  // `exact`: the hint was published this boot, so nothing past it was ever
  // synced successfully (see trail_writer.h): it is cut, not adopted.
  absl::Status Recover(const End& hint, bool exact) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    RDF_ASSIGN_OR_RETURN(std::vector<uint64_t> segs, SegmentNumbers());
    if (segs.empty()) return StartFresh(1);
    for (size_t i = 0; i < segs.size(); ++i) {
      if (segs[i] != segs[0] + i) {
        return absl::DataLossError(absl::StrCat(
            "trail ", opts.name, " in ", opts.dir, ": segment ",
            SegmentFileName(opts.name, segs[0] + i), " is missing"));
      }
    }
    // An exact hint must name a segment that is there; one that does not
    // is not trusted (the trail is recovered as after a reboot).
    exact = exact && hint.pos.segment >= segs.front() && hint.pos.segment <= segs.back();
    if (exact && segs.back() > hint.pos.segment) {
      RDF_RETURN_IF_ERROR(RemoveSegmentsAfter(hint.pos.segment, segs.back()));
      segs.resize(hint.pos.segment - segs.front() + 1);
    }
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      RDF_RETURN_IF_ERROR(ReadSegmentHeader(segs[i]).status());
    }
    absl::StatusOr<SegmentHeader> h = ReadSegmentHeader(segs.back());
    if (absl::IsDataLoss(h.status())) {
      // Published ends never point into a segment before its header is
      // synced: a bad header at or before the hint is damage, else torn.
      if (hint.pos.segment >= segs.back()) return h.status();
      RDF_RETURN_IF_ERROR(opts.fs->Remove(PathOf(segs.back())));
      RDF_RETURN_IF_ERROR(opts.fs->SyncDir(opts.dir));
      if (segs.size() == 1) return StartFresh(segs.back());
      segs.pop_back();
      h = ReadSegmentHeader(segs.back());
    }
    if (!h.ok()) return h.status();
    return RecoverNewest(*h, segs.front(), hint, exact);
  }

  // Removes segments first+1..last, newest first (a crash leaves no hole).
  absl::Status RemoveSegmentsAfter(uint64_t first, uint64_t last) {
    for (uint64_t s = last; s > first; --s) {
      absl::Status rs = opts.fs->Remove(PathOf(s));
      if (!rs.ok() && !absl::IsNotFound(rs)) return rs;
    }
    return opts.fs->SyncDir(opts.dir);
  }

  // Makes segments from..to durable (data and directory entries): what Open
  // adopts past the published end may have been written and never synced.
  absl::Status SyncSegments(uint64_t from, uint64_t to) {
    for (uint64_t s = from; s <= to; ++s) {
      RDF_ASSIGN_OR_RETURN(auto f, opts.fs->OpenWritable(PathOf(s), false));
      RDF_RETURN_IF_ERROR(f->Sync());
      fsyncs.fetch_add(1, std::memory_order_relaxed);
      RDF_RETURN_IF_ERROR(f->Close());
    }
    return opts.fs->SyncDir(opts.dir);
  }

  absl::Status RecoverNewest(const SegmentHeader& h, uint64_t oldest, const End& hint,
                             bool exact) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ReaderOptions ro{opts.dir, opts.name, opts.fs, nullptr};
    RDF_ASSIGN_OR_RETURN(auto reader, TrailReader::Open(ro));
    RDF_RETURN_IF_ERROR(reader->SeekToPosition({h.segment, kHeaderSize}));
    uint64_t asn = 0;
    for (;;) {
      // Past an exact hint every frame is one whose sync failed or never
      // ran: cut, even when it reads back (it may be only in the page cache).
      if (exact && reader->position() >= hint.pos) break;
      absl::StatusOr<std::optional<Record>> r = reader->Next();
      if (absl::IsDataLoss(r.status()) && hint.pos.segment != 0 &&
          reader->position().segment == h.segment &&
          reader->position() >= hint.pos) {
        break;  // an invalid frame past the durable end: torn
      }
      if (!r.ok()) return r.status();
      if (!r->has_value()) break;
      asn = (*r)->asn;
    }
    const Position end = reader->position();
    if (end.segment != h.segment) {
      return absl::InternalError(absl::StrCat("trail ", opts.name, ": segment ",
                                              end.segment, " appeared during Open"));
    }
    if (asn == 0 && h.segment > oldest) {
      // No records here: the last one is at the end of the previous segment.
      RDF_ASSIGN_OR_RETURN(std::optional<Record> prev, reader->Prev());
      if (prev.has_value()) asn = prev->asn;
    }
    RDF_RETURN_IF_ERROR(CutAfter(end));
    if (!exact && hint.pos < end) {
      // Adopted past what was published: make it durable before Open
      // publishes it (a killed leader may have written it unsynced).
      RDF_RETURN_IF_ERROR(SyncSegments(std::max(hint.pos.segment, oldest), h.segment));
    }
    RDF_RETURN_IF_ERROR(UseSegment(h.segment));
    append_header = h;
    append_pos = end;
    last_asn = asn;
    // Frames carry no time; the hint has the time of its ASN.
    last_time_us = hint.asn <= asn ? hint.time_us : 0;
    durable = End{asn, end, last_time_us};
    return absl::OkStatus();
  }

  // Makes every byte of end.segment after end.offset zero (durably), when
  // any is not: cuts a torn frame and whatever was written after it.
  absl::Status CutAfter(const Position& end) {
    RDF_ASSIGN_OR_RETURN(bool clean, ZerosAfter(end));
    if (clean) return absl::OkStatus();
    RDF_ASSIGN_OR_RETURN(auto f, opts.fs->OpenWritable(PathOf(end.segment), false));
    RDF_RETURN_IF_ERROR(f->Truncate(end.offset));
    RDF_RETURN_IF_ERROR(f->Allocate(opts.segment_bytes));
    RDF_RETURN_IF_ERROR(f->Sync());
    fsyncs.fetch_add(1, std::memory_order_relaxed);
    return f->Close();
  }

  absl::StatusOr<bool> ZerosAfter(const Position& end) {
    RDF_ASSIGN_OR_RETURN(auto f, opts.fs->OpenReadable(PathOf(end.segment)));
    RDF_ASSIGN_OR_RETURN(uint64_t size, f->Size());
    std::string buf(kScanBytes, '\0');
    for (uint64_t off = end.offset; off < size;) {
      RDF_ASSIGN_OR_RETURN(size_t n, f->Read(off, kScanBytes, buf.data()));
      if (n == 0) break;
      if (std::any_of(buf.data(), buf.data() + n, [](char c) { return c != 0; })) {
        return false;
      }
      off += n;
    }
    return true;
  }

  // --- TruncateTo ----------------------------------------------------------

  absl::Status TruncateTo(const End& end) {
    absl::MutexLock l(&mu);
    while (leader) idle_cv.Wait(&mu);
    if (!pending.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("trail ", opts.name, ": TruncateTo with records buffered"));
    }
    if (end.pos.offset < kHeaderSize || end.pos > append_pos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trail ", opts.name, ": cannot truncate to ", ToString(end.pos),
          " (end is ", ToString(append_pos), ")"));
    }
    RDF_RETURN_IF_ERROR(CheckFrameEnd(end));
    // Lower the published end first, so no reader starts into what goes.
    if (publisher != nullptr) publisher->Publish(end);
    durable = end;
    for (uint64_t s = append_pos.segment; s > end.pos.segment; --s) {
      absl::Status rs = opts.fs->Remove(PathOf(s));
      if (!rs.ok() && !absl::IsNotFound(rs)) return rs;
    }
    RDF_RETURN_IF_ERROR(opts.fs->SyncDir(opts.dir));
    if (file_segment != end.pos.segment) file.reset();
    RDF_ASSIGN_OR_RETURN(append_header, ReadSegmentHeader(end.pos.segment));
    RDF_RETURN_IF_ERROR(UseSegment(end.pos.segment));
    RDF_RETURN_IF_ERROR(file->Truncate(end.pos.offset));
    RDF_RETURN_IF_ERROR(file->Allocate(opts.segment_bytes));
    RDF_RETURN_IF_ERROR(SyncFile());
    zeroed_to = end.pos.offset;  // the cut blocks are unwritten again
    append_pos = end.pos;
    last_asn = end.asn;
    last_time_us = end.time_us;
    return absl::OkStatus();
  }

  // `end` must be the end of the record with ASN end.asn.
  absl::Status CheckFrameEnd(const End& end) {
    if (end.pos.offset == kHeaderSize) return absl::OkStatus();
    ReaderOptions ro{opts.dir, opts.name, opts.fs, nullptr};
    RDF_ASSIGN_OR_RETURN(auto reader, TrailReader::Open(ro));
    RDF_RETURN_IF_ERROR(reader->SeekToPosition(end.pos));
    absl::StatusOr<std::optional<Record>> prev = reader->Prev();
    if (!prev.ok() || !prev->has_value() || (*prev)->asn != end.asn) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trail ", opts.name, ": ", ToString(end.pos),
          " is not the end of the record with ASN ", end.asn,
          prev.ok() ? "" : absl::StrCat(" (", prev.status().message(), ")")));
    }
    return absl::OkStatus();
  }

  // --- Retention -----------------------------------------------------------

  absl::Status RemoveSegmentsBefore(uint64_t segment) {
    {
      // Never the segment being appended to, nor one with data not yet
      // durable (all of which lie at or after the durable end).
      absl::MutexLock l(&mu);
      segment = std::min(segment, durable.pos.segment);
    }
    RDF_ASSIGN_OR_RETURN(std::vector<uint64_t> segs, SegmentNumbers());
    bool removed = false;
    for (uint64_t s : segs) {  // oldest first: a crash leaves no hole
      if (s >= segment) break;
      absl::Status rs = opts.fs->Remove(PathOf(s));
      if (!rs.ok() && !absl::IsNotFound(rs)) return rs;
      removed = true;
    }
    if (!removed) return absl::OkStatus();
    return opts.fs->SyncDir(opts.dir);
  }
};

TrailWriter::TrailWriter() : impl_(std::make_unique<Impl>()) {}

TrailWriter::~TrailWriter() {
  if (impl_->file != nullptr) impl_->file->Close().IgnoreError();
}

absl::StatusOr<std::unique_ptr<TrailWriter>> TrailWriter::Open(
    const WriterOptions& options) {
  if (options.name.empty() || options.name.size() > kMaxNameLength ||
      options.name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad trail name \"", options.name, "\""));
  }
  if (options.segment_bytes < kHeaderSize + kFrameOverhead) {
    return absl::InvalidArgumentError(
        absl::StrCat("segment_bytes ", options.segment_bytes, " is too small"));
  }
  std::unique_ptr<TrailWriter> w(new TrailWriter);
  Impl& impl = *w->impl_;
  impl.opts = options;
  RDF_RETURN_IF_ERROR(options.fs->CreateDirs(options.dir));
  impl.publisher = options.publisher;
  if (impl.publisher == nullptr && options.shared_end) {
    RDF_ASSIGN_OR_RETURN(impl.own_end,
                         SharedEnd::Create(EndFilePath(options.dir, options.name)));
    impl.publisher = impl.own_end.get();
  }
  // The last published end, if the publisher can tell: the line between a
  // torn tail and damage.
  End hint;
  bool exact = false;
  if (auto* source = dynamic_cast<EndSource*>(impl.publisher)) {
    hint = source->Get();
    exact = options.cut_past_published_end && source->PublishedThisBoot();
  }
  absl::MutexLock l(&impl.mu);
  RDF_RETURN_IF_ERROR(impl.Recover(hint, exact));
  if (impl.publisher != nullptr) impl.publisher->Publish(impl.durable);
  return w;
}

absl::Status TrailWriter::Append(uint64_t asn, uint8_t type,
                                 std::string_view payload, int64_t time_us,
                                 Position* at) {
  return impl_->Append(
      asn, type, payload.size(),
      [&](char* p) {
        if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
      },
      time_us, at);
}

absl::Status TrailWriter::AppendWith(uint64_t asn, uint8_t type, size_t payload_size,
                                     absl::FunctionRef<void(char*)> fill, int64_t time_us,
                                     Position* at) {
  return impl_->Append(asn, type, payload_size, fill, time_us, at);
}

absl::StatusOr<std::string> TrailWriter::ReadPayload(const Position& at) {
  return impl_->ReadPayload(at);
}

absl::Status TrailWriter::Sync() { return impl_->Sync(); }

absl::Status TrailWriter::TruncateTo(const End& end) { return impl_->TruncateTo(end); }

absl::Status TrailWriter::RemoveSegmentsBefore(uint64_t segment) {
  return impl_->RemoveSegmentsBefore(segment);
}

uint64_t TrailWriter::last_asn() const {
  absl::MutexLock l(&impl_->mu);
  return impl_->last_asn;
}

End TrailWriter::durable_end() const {
  absl::MutexLock l(&impl_->mu);
  return impl_->durable;
}

End TrailWriter::appended_end() const {
  absl::MutexLock l(&impl_->mu);
  return End{impl_->last_asn, impl_->append_pos, impl_->last_time_us};
}

uint64_t TrailWriter::fsyncs() const {
  return impl_->fsyncs.load(std::memory_order_relaxed);
}

}  // namespace rdf::trail
