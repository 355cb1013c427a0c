#include "common/trail/reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"

namespace rdf::trail {
namespace {

// Reads are this large (and the buffer this big) so that scanning a trail
// costs one system call per 256 KiB, not one per frame.
constexpr size_t kBufferSize = 256 << 10;
// How often NextWait polls a trail that has no EndSource.
constexpr absl::Duration kPollInterval = absl::Milliseconds(10);

std::string SegmentPath(const std::string& dir, const std::string& name,
                        uint64_t segment) {
  return JoinPath(dir, SegmentFileName(name, segment));
}

absl::Status DamageAt(const std::string& path, uint64_t offset,
                      absl::string_view reason) {
  return absl::DataLossError(absl::StrCat(path, " offset ", offset, ": ", reason));
}

// Reads and checks the header of `path`, which must be segment `segment` of
// trail `name`.
absl::StatusOr<SegmentHeader> ReadHeader(const ReadableFile& file,
                                         const std::string& path,
                                         const std::string& name,
                                         uint64_t segment) {
  char bytes[kHeaderSize];
  RDF_ASSIGN_OR_RETURN(size_t n, file.Read(0, kHeaderSize, bytes));
  absl::StatusOr<SegmentHeader> h = DecodeHeader(std::string_view(bytes, n));
  if (!h.ok()) return DamageAt(path, 0, h.status().message());
  if (h->segment != segment) {
    return DamageAt(path, 0, absl::StrCat("header names segment ", h->segment));
  }
  if (h->name != name) {
    return DamageAt(path, 0, absl::StrCat("header names trail ", h->name));
  }
  return h;
}

// Numbers of the segment files of trail `name` in `dir`, ascending.
absl::StatusOr<std::vector<uint64_t>> SegmentNumbers(FileSystem* fs,
                                                     const std::string& dir,
                                                     const std::string& name) {
  RDF_ASSIGN_OR_RETURN(std::vector<std::string> files, fs->ListDir(dir));
  std::vector<uint64_t> numbers;
  for (const std::string& f : files) {
    uint64_t n;
    if (ParseSegmentFileName(f, name, &n)) numbers.push_back(n);
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

}  // namespace

absl::StatusOr<std::vector<SegmentInfo>> ListSegments(FileSystem* fs,
                                                      const std::string& dir,
                                                      const std::string& name) {
  RDF_ASSIGN_OR_RETURN(std::vector<uint64_t> numbers, SegmentNumbers(fs, dir, name));
  std::vector<SegmentInfo> out;
  for (size_t i = 0; i < numbers.size(); ++i) {
    SegmentInfo info{numbers[i], 0, 0, SegmentPath(dir, name, numbers[i])};
    absl::StatusOr<std::unique_ptr<ReadableFile>> file = fs->OpenReadable(info.path);
    // A segment removed since ListDir (retention) is simply gone.
    if (absl::IsNotFound(file.status())) continue;
    if (!file.ok()) return file.status();
    absl::StatusOr<SegmentHeader> h = ReadHeader(**file, info.path, name, info.segment);
    // The newest segment's header may still be being written by its writer
    // (or torn by a crash its writer will repair): it is not there yet.
    if (absl::IsDataLoss(h.status()) && i + 1 == numbers.size()) break;
    if (!h.ok()) return h.status();
    RDF_ASSIGN_OR_RETURN(info.bytes, (*file)->Size());
    info.first_asn = h->first_asn;
    out.push_back(std::move(info));
  }
  return out;
}

// ---------------------------------------------------------------------------

struct TrailReader::Impl {
  // What the bytes at one offset turned out to be.
  struct Frame {
    enum Kind { kRecord, kEnd, kBad } kind = kEnd;
    const char* reason = nullptr;  // kBad
    uint64_t at = 0;               // kBad: the offset to report
    FrameHeader h;
    std::string_view payload;      // kRecord; valid until the next read
    uint64_t size() const { return kFrameOverhead + h.length; }
  };

  ReaderOptions opts;

  // The segment being read.
  uint64_t seg = 0;
  std::string path;
  SegmentHeader header;
  std::unique_ptr<ReadableFile> file;
  Position pos;

  // Bytes [buf_off, buf_off + buf_len) of the current segment. `fresh` says
  // the buffer was (re)filled during the current frame decode.
  std::string buf;
  uint64_t buf_off = 0;
  size_t buf_len = 0;
  bool fresh = false;
  std::string big;  // a frame larger than the buffer

  absl::Status error;  // sticky damage: the reader stays stopped
  bool have_limit = false;
  End limit;
  // ASN of the record ending at / starting at `pos` (0: unknown), to check
  // that ASNs increase.
  uint64_t asn_before = 0;
  uint64_t asn_at = 0;

  void RefreshLimit() {
    if (opts.limit == nullptr) return;
    limit = opts.limit->Get();
    have_limit = true;
  }

  // Bytes of the current segment the reader may look at: up to the limit
  // when the limit lies in this segment.
  uint64_t ReadableEnd() const {
    if (have_limit && limit.pos.segment == seg) return limit.pos.offset;
    return UINT64_MAX;
  }

  void DropBuffer() { buf_off = buf_len = 0; }

  absl::Status OpenSegment(uint64_t s) {
    std::string p = SegmentPath(opts.dir, opts.name, s);
    RDF_ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> f, opts.fs->OpenReadable(p));
    RDF_ASSIGN_OR_RETURN(SegmentHeader h, ReadHeader(*f, p, opts.name, s));
    seg = s;
    path = std::move(p);
    header = std::move(h);
    file = std::move(f);
    DropBuffer();
    return absl::OkStatus();
  }

  // Bytes [off, off + n) of the segment, fewer at the end of the file or of
  // the readable part. REQUIRES: n <= kBufferSize. Refills the buffer with a
  // window starting at `off` (forward) or ending at off + n (backward).
  absl::StatusOr<std::string_view> Fetch(uint64_t off, size_t n, bool backward) {
    if (off >= buf_off && off + n <= buf_off + buf_len) {
      return std::string_view(buf.data() + (off - buf_off), n);
    }
    if (buf.size() != kBufferSize) buf.resize(kBufferSize);
    uint64_t start = off;
    if (backward) start = off + n > kBufferSize ? off + n - kBufferSize : 0;
    uint64_t end = std::min<uint64_t>(start + kBufferSize, ReadableEnd());
    end = std::max(end, start);
    DropBuffer();
    RDF_ASSIGN_OR_RETURN(size_t got, file->Read(start, end - start, buf.data()));
    buf_off = start;
    buf_len = got;
    fresh = true;
    uint64_t avail = buf_off + buf_len > off ? buf_off + buf_len - off : 0;
    return std::string_view(buf.data() + (off - buf_off),
                            std::min<uint64_t>(n, avail));
  }

  // Reads payload and trailer of a frame too big for the buffer into `big`.
  // False when the file is too short to hold them; then nothing is
  // allocated: a damaged length must not cost up to kMaxPayload of memory.
  absl::StatusOr<bool> ReadBig(uint64_t off, const FrameHeader& h) {
    fresh = true;
    RDF_ASSIGN_OR_RETURN(uint64_t size, file->Size());
    if (off + kFrameHeaderSize + h.length + kFrameTrailerSize > size) return false;
    big.resize(h.length + kFrameTrailerSize);
    RDF_ASSIGN_OR_RETURN(size_t got, file->Read(off + kFrameHeaderSize,
                                                big.size(), big.data()));
    return got == big.size();
  }

  // Decodes the frame at `off` (forward: its header comes first).
  absl::StatusOr<Frame> TryFrameAt(uint64_t off) {
    Frame f;
    RDF_ASSIGN_OR_RETURN(std::string_view v, Fetch(off, kFrameHeaderSize, false));
    if (v.size() < 4) return f;  // end of file (or of the readable part)
    // Four zero bytes mean "no more records", unless a whole valid frame is
    // there: a masked CRC is zero once in 2^32 frames.
    const bool zero = DecodeFixed32(v.data()) == 0;
    auto bad = [&](const char* reason) {
      if (!zero) {
        f.kind = Frame::kBad;
        f.reason = reason;
      }
      return f;
    };
    if (v.size() < kFrameHeaderSize) return bad("truncated frame header");
    char head[kFrameHeaderSize];
    std::memcpy(head, v.data(), kFrameHeaderSize);
    f.h = DecodeFrameHeader(head);
    if (zero && f.h.type == 0) return f;
    if (f.h.length > kMaxPayload) return bad("frame length out of range");
    if (off + f.size() > ReadableEnd()) {
      return bad("frame runs past the durable end");
    }
    std::string_view payload;
    uint32_t trailer;
    if (f.size() <= kBufferSize) {
      RDF_ASSIGN_OR_RETURN(v, Fetch(off, f.size(), false));
      if (v.size() < f.size()) return bad("truncated frame");
      payload = v.substr(kFrameHeaderSize, f.h.length);
      trailer = DecodeFixed32(v.data() + kFrameHeaderSize + f.h.length);
    } else {
      RDF_ASSIGN_OR_RETURN(bool whole, ReadBig(off, f.h));
      if (!whole) return bad("truncated frame");
      payload = std::string_view(big.data(), f.h.length);
      trailer = DecodeFixed32(big.data() + f.h.length);
    }
    if (const char* r = CheckFrame(std::string_view(head, kFrameHeaderSize),
                                   payload, trailer)) {
      return bad(r);
    }
    f.kind = Frame::kRecord;
    f.payload = payload;
    return f;
  }

  // TryFrameAt, but an end or a bad frame seen in bytes buffered earlier is
  // re-read first: with no limit the writer may have written them since.
  absl::StatusOr<Frame> FrameAt(uint64_t off) {
    fresh = false;
    RDF_ASSIGN_OR_RETURN(Frame f, TryFrameAt(off));
    if (f.kind == Frame::kRecord || fresh) return f;
    DropBuffer();
    return TryFrameAt(off);
  }

  absl::Status Fail(uint64_t offset, absl::string_view reason) {
    error = DamageAt(path, offset, reason);
    return error;
  }

  Record MakeRecord(const Frame& f, uint64_t off, bool want_payload) {
    Record r;
    r.asn = f.h.asn;
    r.type = f.h.type;
    if (want_payload) {
      if (f.payload.data() == big.data()) {
        big.resize(f.h.length);
        r.payload = std::move(big);
        big = std::string();
      } else {
        r.payload.assign(f.payload);
      }
    }
    r.pos = {seg, off};
    r.next = {seg, off + f.size()};
    return r;
  }

  // At the end of the current segment's records: moves to the next segment
  // when there is one to read. False: stay (the end of what is readable).
  absl::StatusOr<bool> AdvanceSegment() {
    if (have_limit) {
      if (limit.pos.segment <= seg) {
        RDF_RETURN_IF_ERROR(Fail(pos.offset, absl::StrCat(
            "records end before the durable end ", ToString(limit.pos))));
      }
      absl::Status s = OpenSegment(seg + 1);
      if (absl::IsDataLoss(s)) error = s;
      RDF_RETURN_IF_ERROR(s);
    } else {
      if (!opts.fs->Exists(SegmentPath(opts.dir, opts.name, seg + 1))) return false;
      absl::Status s = OpenSegment(seg + 1);
      // Its writer may be creating it: not there yet.
      if (absl::IsDataLoss(s) || absl::IsNotFound(s)) return false;
      RDF_RETURN_IF_ERROR(s);
    }
    pos = {seg, kHeaderSize};
    return true;
  }

  // With no limit: whether the bad frame at `pos` is a torn tail, i.e. this
  // is the newest segment and nothing but zeros follows the frame.
  absl::StatusOr<bool> IsTornTail(const Frame& f) {
    if (opts.fs->Exists(SegmentPath(opts.dir, opts.name, seg + 1))) return false;
    RDF_ASSIGN_OR_RETURN(uint64_t size, file->Size());
    // A frame cut by the end of the file is torn; otherwise only zeros may
    // follow it (after its header, when its length cannot be trusted).
    if (f.h.length > kMaxPayload) {
      return AllZeros(pos.offset + kFrameHeaderSize, size);
    }
    if (pos.offset + f.size() >= size) return true;
    return AllZeros(pos.offset + f.size(), size);
  }

  absl::StatusOr<bool> AllZeros(uint64_t from, uint64_t to) {
    DropBuffer();
    if (buf.size() != kBufferSize) buf.resize(kBufferSize);
    while (from < to) {
      size_t n = std::min<uint64_t>(kBufferSize, to - from);
      RDF_ASSIGN_OR_RETURN(size_t got, file->Read(from, n, buf.data()));
      if (got == 0) break;
      if (std::any_of(buf.data(), buf.data() + got, [](char c) { return c != 0; })) {
        return false;
      }
      from += got;
    }
    return true;
  }

  absl::Status CheckAsnForward(uint64_t asn) {
    if (asn < header.first_asn) {
      return Fail(pos.offset, absl::StrCat("ASN ", asn, " below the segment's first ASN ",
                                           header.first_asn));
    }
    if (asn_before != 0 && asn < asn_before) {
      return Fail(pos.offset, absl::StrCat("ASN ", asn, " below the previous ASN ",
                                           asn_before));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<Record>> ReadNext(bool want_payload) {
    if (!error.ok()) return error;
    RefreshLimit();
    for (;;) {
      if (have_limit && pos >= limit.pos) return std::nullopt;
      RDF_ASSIGN_OR_RETURN(Frame f, FrameAt(pos.offset));
      if (f.kind == Frame::kRecord) {
        RDF_RETURN_IF_ERROR(CheckAsnForward(f.h.asn));
        Record r = MakeRecord(f, pos.offset, want_payload);
        pos = r.next;
        asn_before = r.asn;
        asn_at = 0;
        return r;
      }
      if (f.kind == Frame::kBad) {
        if (!have_limit) {
          RDF_ASSIGN_OR_RETURN(bool torn, IsTornTail(f));
          if (torn) return std::nullopt;
        }
        return Fail(pos.offset, f.reason);
      }
      RDF_ASSIGN_OR_RETURN(bool moved, AdvanceSegment());
      if (!moved) return std::nullopt;
    }
  }

  // Decodes the frame ending at `end` (backward: its trailer comes first).
  absl::StatusOr<Frame> TryFrameBefore(uint64_t end) {
    Frame f;
    f.kind = Frame::kBad;
    f.at = end - kFrameTrailerSize;
    RDF_ASSIGN_OR_RETURN(std::string_view v, Fetch(end - kFrameTrailerSize,
                                                   kFrameTrailerSize, true));
    if (v.size() < kFrameTrailerSize) {
      f.reason = "truncated frame trailer";
      return f;
    }
    f.h.length = DecodeFixed32(v.data());
    if (f.h.length > kMaxPayload || end - kHeaderSize < f.size()) {
      f.reason = "trailer length out of range";
      return f;
    }
    const uint64_t off = end - f.size();
    f.at = off;
    char head[kFrameHeaderSize];
    std::string_view payload;
    uint32_t trailer = f.h.length;
    if (f.size() <= kBufferSize) {
      RDF_ASSIGN_OR_RETURN(v, Fetch(off, f.size(), true));
      if (v.size() < f.size()) {
        f.reason = "truncated frame";
        return f;
      }
      std::memcpy(head, v.data(), kFrameHeaderSize);
      payload = v.substr(kFrameHeaderSize, f.h.length);
    } else {
      RDF_ASSIGN_OR_RETURN(size_t got, file->Read(off, kFrameHeaderSize, head));
      RDF_ASSIGN_OR_RETURN(bool whole, ReadBig(off, f.h));
      if (got < kFrameHeaderSize || !whole) {
        f.reason = "truncated frame";
        return f;
      }
      payload = std::string_view(big.data(), f.h.length);
    }
    f.reason = CheckFrame(std::string_view(head, kFrameHeaderSize), payload, trailer);
    if (f.reason != nullptr) return f;
    f.kind = Frame::kRecord;
    f.h = DecodeFrameHeader(head);
    f.payload = payload;
    return f;
  }

  absl::StatusOr<std::optional<Record>> ReadPrev() {
    if (!error.ok()) return error;
    RefreshLimit();
    if (have_limit && limit.pos.segment == 0) return std::nullopt;
    if (have_limit && pos > limit.pos) {
      return absl::OutOfRangeError(absl::StrCat(
          "position ", ToString(pos), " is past the limit ", ToString(limit.pos)));
    }
    for (;;) {
      if (pos.offset <= kHeaderSize) {
        RDF_ASSIGN_OR_RETURN(bool moved, RetreatSegment());
        if (!moved) return std::nullopt;
        continue;
      }
      if (pos.offset < kHeaderSize + kFrameOverhead) {
        return Fail(pos.offset, "no room for a frame before this offset");
      }
      fresh = false;
      RDF_ASSIGN_OR_RETURN(Frame f, TryFrameBefore(pos.offset));
      if (f.kind != Frame::kRecord && !fresh) {
        DropBuffer();
        RDF_ASSIGN_OR_RETURN(f, TryFrameBefore(pos.offset));
      }
      if (f.kind != Frame::kRecord) {
        return Fail(f.at, f.reason);
      }
      const uint64_t off = pos.offset - f.size();
      if (asn_at != 0 && f.h.asn > asn_at) {
        return Fail(off, absl::StrCat("ASN ", f.h.asn, " above the next ASN ", asn_at));
      }
      Record r = MakeRecord(f, off, /*want_payload=*/true);
      pos = r.pos;
      asn_at = r.asn;
      asn_before = 0;
      return r;
    }
  }

  // At the start of a segment: moves to the end of the previous one, found
  // through this header's prev_end. False at the start of the oldest.
  absl::StatusOr<bool> RetreatSegment() {
    if (seg <= 1 || header.prev_end == 0) return false;
    const uint64_t prev_end = header.prev_end;
    absl::Status s = OpenSegment(seg - 1);
    if (absl::IsNotFound(s)) return false;  // removed by retention
    RDF_RETURN_IF_ERROR(s);
    pos = {seg, prev_end};
    return true;
  }

  absl::Status SeekToPosition(const Position& p) {
    if (p.offset < kHeaderSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("position ", ToString(p), " lies inside a segment header"));
    }
    RDF_RETURN_IF_ERROR(OpenSegment(p.segment));
    pos = p;
    error = absl::OkStatus();
    asn_before = asn_at = 0;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<SegmentInfo>> Segments() {
    RDF_ASSIGN_OR_RETURN(auto segs, ListSegments(opts.fs, opts.dir, opts.name));
    if (segs.empty()) {
      return absl::NotFoundError(absl::StrCat("no segments of trail ", opts.name,
                                              " in ", opts.dir));
    }
    return segs;
  }

  absl::Status SeekToAsn(uint64_t asn) {
    RDF_ASSIGN_OR_RETURN(auto segs, Segments());
    // Each segment's first_asn is above every ASN of the segments before it.
    size_t i = 0;
    while (i + 1 < segs.size() && segs[i + 1].first_asn <= asn) ++i;
    RDF_RETURN_IF_ERROR(SeekToPosition({segs[i].segment, kHeaderSize}));
    for (;;) {
      const uint64_t before = asn_before;
      RDF_ASSIGN_OR_RETURN(std::optional<Record> r, ReadNext(false));
      if (!r.has_value()) return absl::OkStatus();
      if (r->asn >= asn) {
        pos = r->pos;
        asn_before = before;
        return absl::OkStatus();
      }
    }
  }

  absl::Status SeekToEnd() {
    RefreshLimit();
    if (have_limit && limit.pos.segment != 0) {
      RDF_RETURN_IF_ERROR(SeekToPosition(limit.pos));
      asn_before = limit.asn;
      return absl::OkStatus();
    }
    RDF_ASSIGN_OR_RETURN(auto segs, Segments());
    RDF_RETURN_IF_ERROR(SeekToPosition({segs.back().segment, kHeaderSize}));
    for (;;) {
      RDF_ASSIGN_OR_RETURN(std::optional<Record> r, ReadNext(false));
      if (!r.has_value()) return absl::OkStatus();
    }
  }
};

TrailReader::TrailReader() : impl_(std::make_unique<Impl>()) {}
TrailReader::~TrailReader() = default;

absl::StatusOr<std::unique_ptr<TrailReader>> TrailReader::Open(
    const ReaderOptions& options) {
  std::unique_ptr<TrailReader> r(new TrailReader);
  r->impl_->opts = options;
  // Only the oldest segment's header matters here; damage further on is
  // reported when the reader gets there.
  RDF_ASSIGN_OR_RETURN(std::vector<uint64_t> segs,
                       SegmentNumbers(options.fs, options.dir, options.name));
  if (segs.empty()) {
    return absl::NotFoundError(absl::StrCat("no segments of trail ", options.name,
                                            " in ", options.dir));
  }
  RDF_RETURN_IF_ERROR(r->impl_->SeekToPosition({segs.front(), kHeaderSize}));
  return r;
}

absl::Status TrailReader::SeekToPosition(const Position& pos) {
  return impl_->SeekToPosition(pos);
}
absl::Status TrailReader::SeekToAsn(uint64_t asn) { return impl_->SeekToAsn(asn); }
absl::Status TrailReader::SeekToEnd() { return impl_->SeekToEnd(); }

absl::StatusOr<std::optional<Record>> TrailReader::Next() {
  return impl_->ReadNext(/*want_payload=*/true);
}

absl::StatusOr<std::optional<Record>> TrailReader::NextWait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    RDF_ASSIGN_OR_RETURN(std::optional<Record> r, Next());
    if (r.has_value()) return r;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return r;
    if (impl_->opts.limit != nullptr) {
      impl_->opts.limit->WaitBeyond(impl_->limit.asn, left);
    } else {
      absl::SleepFor(std::min(left, kPollInterval));
    }
  }
}

absl::StatusOr<std::optional<Record>> TrailReader::Prev() { return impl_->ReadPrev(); }

Position TrailReader::position() const { return impl_->pos; }

}  // namespace rdf::trail
