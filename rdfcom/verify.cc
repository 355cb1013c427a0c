#include "rdfcom/verify.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status_macros.h"
#include "common/events/catalog.h"
#include "common/json/writer.h"

namespace rdf::rdfcom {

namespace {

// proto VerifyEntry.value_hash: a 16-byte BLAKE2b hash.
constexpr size_t kValueHashBytes = 16;

constexpr char kOnlyOnPrimary[] = "only_on_primary";
constexpr char kOnlyOnBackup[] = "only_on_backup";
constexpr char kValuesDiffer[] = "values_differ";

struct FileId {
  std::string volume;
  std::string file;
};

struct Difference {
  std::string key;  // raw bytes
  const char* kind;
};

struct FileResult {
  FileId id;
  bool primary_exists = false;  // listed by the node's VERIFY_FILES
  bool backup_exists = false;
  uint64_t primary_records = 0;
  uint64_t backup_records = 0;
  uint64_t difference_count = 0;
  std::vector<Difference> listed;  // the first differences, in key order
  bool rechecked = false;
  // A file on one side only differs even when it holds no records.
  bool equal() const { return difference_count == 0 && primary_exists == backup_exists; }
};

// Whether every reply of a verify run saw both nodes at one point, the
// consistent cut (see verify.h): fed every reply, in order, and asked at
// the end. The first problem found is the one reported.
class CutWatch {
 public:
  void OnReply(bool primary, const proto::ControlReply& r) {
    if (primary) {
      Same("the primary's audit end", &audit_end_, r.status().audit_end_asn());
    }
    for (const proto::VerifyPosition& p : r.verify_positions()) {
      auto [it, fresh] = (primary ? primary_ : backup_).emplace(p.volume(), p);
      if (fresh) continue;
      const proto::VerifyPosition& was = it->second;
      if (was.applied_asn() != p.applied_asn() || was.volume_exists() != p.volume_exists() ||
          was.caught_up() != p.caught_up() || was.save_point_asn() != p.save_point_asn()) {
        Note(absl::StrCat(p.volume(), " changed on the ", primary ? "primary" : "backup",
                          " during the scan (applied ASN ", was.applied_asn(), ", then ",
                          p.applied_asn(), primary ? "" : absl::StrCat("; save point ",
                                                                         was.save_point_asn(),
                                                                         ", then ",
                                                                         p.save_point_asn()),
                          ")"));
      }
    }
  }
  // A VERIFY_SCAN reply's file_exists against the node's file list.
  void OnFilePresence(const std::string& node, const FileId& id, bool listed, bool scanned) {
    if (listed == scanned) return;
    Note(absl::StrCat(id.volume, " ", id.file, (scanned ? " appeared on " : " vanished from "),
                      node, " during the scan"));
  }
  // The problem, or "" when the cut is consistent; then cut_asn() is the
  // point compared.
  std::string Problem() {
    if (!problem_.empty()) return problem_;
    const uint64_t e = audit_end_.value_or(0);
    for (const auto& [volume, p] : backup_) {
      if (p.save_point_asn() != e) {
        return absl::StrCat("the backup's save point (ASN ", p.save_point_asn(),
                            ") is not the primary's audit end (ASN ", e,
                            "): audit was still on its way");
      }
      if (p.open_transactions() != 0) {
        return absl::StrCat(p.open_transactions(), " transaction(s) had no outcome at ASN ",
                            p.save_point_asn(), ": the backup holds their uncommitted work");
      }
      if (!p.caught_up()) {
        return absl::StrCat(volume, "'s updater had not applied everything up to the save "
                            "point (applied ASN ", p.applied_asn(), ")");
      }
    }
    for (const auto& [volume, p] : primary_) {
      if (p.applied_asn() > e) {
        return absl::StrCat(volume, " on the primary is applied through ASN ", p.applied_asn(),
                            ", past the audit end ", e, " read with it");
      }
    }
    return "";
  }
  uint64_t cut_asn() const { return audit_end_.value_or(0); }

 private:
  void Same(const std::string& what, std::optional<uint64_t>* seen, uint64_t now) {
    if (!seen->has_value()) {
      *seen = now;
    } else if (**seen != now) {
      Note(absl::StrCat(what, " moved during the scan (ASN ", **seen, ", then ", now, ")"));
    }
  }
  void Note(std::string problem) {
    if (problem_.empty()) problem_ = std::move(problem);
  }

  std::optional<uint64_t> audit_end_;
  std::map<std::string, proto::VerifyPosition> primary_, backup_;
  std::string problem_;
};

// One node as verify talks to it.
class Side {
 public:
  Side(const VerifyOptions& o, const proto::NodeConfig* node, CutWatch* cut)
      : o_(o), node_(node), cut_(cut) {}

  const std::string& name() const { return node_->name(); }
  bool primary() const { return node_->role() == proto::PRIMARY; }
  CutWatch* cut() const { return cut_; }

  // Sends `req` (version and operator filled in); a failed call or a reply
  // with ok = false is an error naming the node.
  absl::StatusOr<proto::ControlReply> Call(proto::ControlRequest req) const {
    req.set_version(proto::CONTROL_VERSION_1);
    req.set_operator_(o_.operator_name);
    absl::StatusOr<proto::ControlReply> r = o_.call(*node_, req);
    if (!r.ok()) return Annotate(r.status(), absl::StrCat("verify: node ", name()));
    if (!r->ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("verify: node ", name(), " refused: ", r->error()));
    }
    cut_->OnReply(primary(), *r);
    return r;
  }

  absl::StatusOr<proto::ControlReply> ListFiles() const {
    proto::ControlRequest req;
    req.set_command(proto::ControlRequest::VERIFY_FILES);
    return Call(std::move(req));
  }

  uint32_t page_limit() const { return o_.page_limit; }

 private:
  const VerifyOptions& o_;
  const proto::NodeConfig* node_;
  CutWatch* cut_;
};

// One file of one node, read page by page in key order.
class PageStream {
 public:
  // `listed`: whether the node's VERIFY_FILES listed the file.
  PageStream(const Side* side, const FileId& id, bool listed)
      : side_(side), id_(id), listed_(listed) {}

  // The current entry; nullptr once the file is exhausted. The pointer is
  // valid until the next Advance().
  absl::StatusOr<const proto::VerifyEntry*> Head() {
    while (pos_ >= page_.entries_size()) {
      if (started_ && !page_.more()) return nullptr;
      RDF_RETURN_IF_ERROR(FetchNextPage());
    }
    return &page_.entries(pos_);
  }
  void Advance() { ++pos_; }

 private:
  absl::Status FetchNextPage() {
    proto::ControlRequest req;
    req.set_command(proto::ControlRequest::VERIFY_SCAN);
    req.set_volume(id_.volume);
    req.set_file(id_.file);
    req.set_from_start(!started_);
    req.set_after_key(last_key_);
    req.set_limit(side_->page_limit());
    RDF_ASSIGN_OR_RETURN(page_, side_->Call(std::move(req)));
    started_ = true;
    pos_ = 0;
    for (const proto::VerifyPosition& p : page_.verify_positions()) {
      side_->cut()->OnFilePresence(side_->name(), id_, listed_, p.file_exists());
    }
    if (page_.more() && page_.entries_size() == 0) {
      return absl::DataLossError(absl::StrCat("verify: node ", side_->name(),
                                              " sent an empty page with more to follow for ",
                                              id_.volume, " ", id_.file));
    }
    // The merge relies on strictly increasing keys.
    for (const proto::VerifyEntry& e : page_.entries()) {
      if (e.value_hash().size() != kValueHashBytes) {
        return absl::FailedPreconditionError(absl::StrCat(
            "verify: node ", side_->name(), " sent a value hash of ", e.value_hash().size(),
            " bytes, not ", kValueHashBytes, ": its monitor is older than this rdfcom"));
      }
      if (!last_key_.empty() && e.key() <= last_key_) {
        return absl::DataLossError(absl::StrCat("verify: node ", side_->name(),
                                                " sent keys out of order for ", id_.volume, " ",
                                                id_.file, " at ", EscapeKey(e.key())));
      }
      last_key_ = e.key();
    }
    return absl::OkStatus();
  }

  const Side* side_;
  FileId id_;
  bool listed_;
  proto::ControlReply page_;
  int pos_ = 0;
  bool started_ = false;
  std::string last_key_;  // of the last page fetched (LMDB keys are never empty)
};

// Merges the two nodes' streams of one file (a state machine over the two
// heads: the smaller key is the one missing on the other side).
absl::StatusOr<FileResult> CompareFile(const Side& primary, const Side& backup,
                                       const FileId& id, bool on_primary, bool on_backup,
                                       size_t max_listed) {
  FileResult r;
  r.id = id;
  r.primary_exists = on_primary;
  r.backup_exists = on_backup;
  PageStream p(&primary, id, on_primary), b(&backup, id, on_backup);
  auto note = [&](const std::string& key, const char* kind) {
    ++r.difference_count;
    if (r.listed.size() < max_listed) r.listed.push_back({key, kind});
  };
  for (;;) {
    RDF_ASSIGN_OR_RETURN(const proto::VerifyEntry* pe, p.Head());
    RDF_ASSIGN_OR_RETURN(const proto::VerifyEntry* be, b.Head());
    if (pe == nullptr && be == nullptr) break;
    // std::string compares bytes as unsigned, like LMDB's default order.
    const int c = pe == nullptr ? 1 : be == nullptr ? -1 : pe->key().compare(be->key());
    if (c <= 0) ++r.primary_records;
    if (c >= 0) ++r.backup_records;
    if (c < 0) {
      note(pe->key(), kOnlyOnPrimary);
    } else if (c > 0) {
      note(be->key(), kOnlyOnBackup);
    } else if (pe->value_hash() != be->value_hash()) {
      note(pe->key(), kValuesDiffer);
    }
    if (c <= 0) p.Advance();
    if (c >= 0) b.Advance();
  }
  return r;
}

// The union of both nodes' file lists: volumes in configuration order
// (others after, by name), then files by name.
std::vector<FileId> UnionOfFiles(const config::Config& config, const proto::ControlReply& a,
                                 const proto::ControlReply& b) {
  std::map<std::string, size_t> volume_rank;
  for (const proto::VolumeConfig& v : config.proto.volumes()) {
    volume_rank.emplace(v.name(), volume_rank.size());
  }
  std::map<std::tuple<size_t, std::string, std::string>, FileId> files;
  for (const proto::ControlReply* reply : {&a, &b}) {
    for (const proto::VerifyFile& f : reply->files()) {
      auto it = volume_rank.find(f.volume());
      size_t rank = it == volume_rank.end() ? volume_rank.size() : it->second;
      files.emplace(std::make_tuple(rank, f.volume(), f.file()), FileId{f.volume(), f.file()});
    }
  }
  std::vector<FileId> out;
  for (auto& [k, id] : files) out.push_back(std::move(id));
  return out;
}

bool Lists(const proto::ControlReply& files, const FileId& id) {
  for (const proto::VerifyFile& f : files.files()) {
    if (f.volume() == id.volume && f.file() == id.file) return true;
  }
  return false;
}

// "primary 3 records" or "primary: no such file".
std::string SideText(const char* node, bool exists, uint64_t records) {
  if (!exists) return absl::StrCat(node, ": no such file");
  return absl::StrCat(node, " ", records, " records");
}

const char* KindText(const char* kind) {
  if (kind == kOnlyOnPrimary) return "only on primary";
  if (kind == kOnlyOnBackup) return "only on backup";
  return "values differ";
}

void PrintText(const std::vector<FileResult>& results, const VerifySummary& s,
               absl::Duration recheck_delay, std::ostream& out) {
  out << "verify: primary applied ASN " << s.primary_applied_asn << ", backup applied ASN "
      << s.backup_applied_asn << "\n";
  if (s.consistent_cut) {
    out << "verify: both nodes compared at ASN " << s.cut_asn << "\n";
  } else {
    out << "verify: NO CONSISTENT CUT: " << s.cut_problem
        << "; the files below were read from a moving target and prove nothing either way "
           "(run verify on a drained system: `rdfcom stop --drain`)\n";
  }
  for (const FileResult& r : results) {
    out << r.id.volume << " " << r.id.file << ": "
        << SideText("primary", r.primary_exists, r.primary_records) << ", "
        << SideText("backup", r.backup_exists, r.backup_records) << ", ";
    if (r.equal()) {
      out << "equal";
    } else if (r.primary_exists != r.backup_exists) {
      out << "DIFFERENT (only on " << (r.primary_exists ? "primary" : "backup") << ")";
    } else {
      out << "DIFFERENT (" << r.difference_count
          << (r.difference_count == 1 ? " key" : " keys") << ")";
    }
    if (r.rechecked) out << " (rechecked after " << absl::FormatDuration(recheck_delay) << ")";
    out << "\n";
    for (const Difference& d : r.listed) {
      out << "  " << KindText(d.kind) << ": " << EscapeKey(d.key) << "\n";
    }
    if (r.difference_count > r.listed.size()) {
      out << "  ... and " << r.difference_count - r.listed.size() << " more\n";
    }
  }
  if (!s.consistent_cut) {
    out << "verify: no consistent cut (" << s.differing_files << " of " << s.files
        << " files differed while the nodes moved): not verified\n";
  } else if (s.equal) {
    out << "verify: " << s.files << (s.files == 1 ? " file, " : " files, ")
        << s.primary_records << " records each side, equal at ASN " << s.cut_asn << "\n";
  } else {
    out << "verify: " << s.differing_files << " of " << s.files << " files differ ("
        << s.primary_records << " records on primary, " << s.backup_records
        << " on backup) at ASN " << s.cut_asn << "\n";
  }
}

void PrintJson(const std::vector<FileResult>& results, const VerifySummary& s,
               std::ostream& out) {
  json::Writer w;
  w.BeginObject()
      .Field("equal", s.equal)
      .Field("consistent_cut", s.consistent_cut)
      .Field("cut_asn", s.cut_asn)
      .Field("cut_problem", s.cut_problem)
      .Field("primary_applied_asn", s.primary_applied_asn)
      .Field("backup_applied_asn", s.backup_applied_asn)
      .Key("files")
      .BeginArray();
  for (const FileResult& r : results) {
    w.BeginObject()
        .Field("volume", r.id.volume)
        .Field("file", r.id.file)
        .Field("primary_exists", r.primary_exists)
        .Field("backup_exists", r.backup_exists)
        .Field("primary_records", r.primary_records)
        .Field("backup_records", r.backup_records)
        .Field("equal", r.equal())
        .Field("difference_count", r.difference_count)
        .Field("rechecked", r.rechecked)
        .Key("differences")
        .BeginArray();
    for (const Difference& d : r.listed) {
      w.BeginObject().Field("key", EscapeKey(d.key)).Field("kind", d.kind).EndObject();
    }
    w.EndArray().EndObject();
  }
  w.EndArray().EndObject();
  out << w.str() << "\n";
}

}  // namespace

absl::Status LogVerifyResult(const VerifyOptions& o, const VerifySummary& s) {
  // Without a consistent cut neither "identical" nor "different" is known.
  if (!s.consistent_cut) return absl::OkStatus();
  const proto::NodeConfig* backup = o.config->NodeWithRole(proto::BACKUP);
  if (backup == nullptr) return absl::InvalidArgumentError("no BACKUP node");
  proto::ControlRequest req;
  req.set_command(proto::ControlRequest::VERIFY_RESULT);
  req.set_operator_(o.operator_name);
  auto add = [&req](uint32_t number) {
    proto::Event* e = req.add_events();
    e->set_number(number);
    return e->mutable_fields();
  };
  if (s.equal) {
    auto* f = add(events::kVerifyMatch);
    (*f)["volumes"] = absl::StrCat(s.volumes);
    (*f)["files"] = absl::StrCat(s.files);
    (*f)["records"] = absl::StrCat(s.primary_records);
  }
  for (const VerifyDifferingFile& d : s.differing) {
    auto* f = add(events::kVerifyMismatch);
    (*f)["volume"] = d.volume;
    (*f)["file"] = d.file;
    (*f)["differences"] = absl::StrCat(d.differences);
    (*f)["first_key"] = d.first_key;
  }
  return o.call(*backup, req).status();
}

std::string EscapeKey(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (unsigned char c : key) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c <= 0x7e) {
      out += static_cast<char>(c);
    } else {
      out += absl::StrFormat("\\x%02x", static_cast<unsigned>(c));
    }
  }
  return out;
}

absl::StatusOr<VerifySummary> RunVerify(const VerifyOptions& o, std::ostream& out) {
  const proto::NodeConfig* pn = o.config->NodeWithRole(proto::PRIMARY);
  const proto::NodeConfig* bn = o.config->NodeWithRole(proto::BACKUP);
  if (pn == nullptr || bn == nullptr) {
    return absl::FailedPreconditionError("verify: the configuration needs a primary and a backup");
  }
  CutWatch cut;
  const Side primary(o, pn, &cut), backup(o, bn, &cut);
  const size_t max_listed = static_cast<size_t>(std::max(o.max_listed_differences, 0));
  proto::ControlReply pf, bf;
  std::vector<FileResult> results;
  // Every file, at one cut if the nodes hold still; a second pass when
  // they moved during the first (a pipeline that was just catching up).
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      o.clock->SleepMicros(absl::ToInt64Microseconds(o.recheck_delay));
      cut = CutWatch();
    }
    RDF_ASSIGN_OR_RETURN(pf, primary.ListFiles());
    RDF_ASSIGN_OR_RETURN(bf, backup.ListFiles());
    results.clear();
    for (const FileId& id : UnionOfFiles(*o.config, pf, bf)) {
      RDF_ASSIGN_OR_RETURN(FileResult r, CompareFile(primary, backup, id, Lists(pf, id),
                                                     Lists(bf, id), max_listed));
      r.rechecked = pass == 1;
      results.push_back(std::move(r));
    }
    if (cut.Problem().empty()) break;
  }

  VerifySummary s;
  s.primary_applied_asn = pf.applied_asn();
  s.backup_applied_asn = bf.applied_asn();
  s.files = results.size();
  std::set<std::string> volumes;
  for (const FileResult& r : results) {
    volumes.insert(r.id.volume);
    if (!r.equal()) {
      s.differing.push_back({r.id.volume, r.id.file, r.difference_count,
                             r.listed.empty() ? "" : EscapeKey(r.listed.front().key)});
    }
    s.differing_files += !r.equal();
    s.primary_records += r.primary_records;
    s.backup_records += r.backup_records;
  }
  s.volumes = volumes.size();
  s.cut_problem = cut.Problem();
  s.consistent_cut = s.cut_problem.empty();
  s.cut_asn = s.consistent_cut ? cut.cut_asn() : 0;
  s.equal = s.consistent_cut && s.differing_files == 0;
  if (o.json) {
    PrintJson(results, s, out);
  } else {
    PrintText(results, s, o.recheck_delay, out);
  }
  return s;
}

}  // namespace rdf::rdfcom
