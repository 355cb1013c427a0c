// Fuzz target: the configuration loader (common/config.h). The input is the
// text of a configuration file; config::Parse parses and validates it (and
// builds its error messages, with their line, column and field path) without
// touching the file system. A configuration that loads is then queried the
// way the processes do at start.
//
// Promise checked: a configuration that loads has exactly one PRIMARY and
// one BACKUP node, at least one protected volume, and absolute node paths.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdf;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<config::Config> c = config::Parse(text, "/tmp/fuzz/rdf.textproto");
  if (!c.ok()) return 0;

  const proto::NodeConfig* primary = c->NodeWithRole(proto::PRIMARY);
  const proto::NodeConfig* backup = c->NodeWithRole(proto::BACKUP);
  RDF_FUZZ_CHECK(primary != nullptr && backup != nullptr && primary != backup,
                 "a loaded configuration lacks a PRIMARY or a BACKUP node");
  RDF_FUZZ_CHECK(!c->ProtectedVolumes().empty(),
                 "a loaded configuration has no protected volume");
  for (const proto::NodeConfig& n : c->proto.nodes()) {
    RDF_FUZZ_CHECK(!n.data_dir().empty() && n.data_dir()[0] == '/' &&
                       !n.key_file().empty() && n.key_file()[0] == '/',
                   "a loaded configuration has a relative node path");
    config::SelectNode(*c, n.name(), proto::PRIMARY).IgnoreError();
    config::AuditDir(n);
    config::ImageTrailDir(n);
    config::EventDir(n);
  }
  config::SelectNode(*c, "", proto::BACKUP).IgnoreError();
  config::SelectNode(*c, "no such node", proto::BACKUP).IgnoreError();
  for (const proto::VolumeConfig* v : c->ProtectedVolumes()) {
    config::VolumeDir(*backup, v->name());
    c->FindVolume(v->name());
    c->IsProtected(v->name(), "LOAD");
    for (const proto::FileConfig& f : v->files()) c->IsProtected(v->name(), f.name());
    for (const std::string& p : v->include()) c->IsProtected(v->name(), p);
    for (const std::string& p : v->exclude()) c->IsProtected(v->name(), p);
  }
  return 0;
}
