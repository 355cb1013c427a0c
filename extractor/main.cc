// rdf-extractor: the backup node's receiver (see receiver.h).
#include <csignal>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/cli.h"
#include "common/config.h"
#include "extractor/extractor.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  using namespace rdf;
  std::string config_path, node;
  cli::Parser p("rdf-extractor --config FILE [--node NAME]",
                "Ships the primary's audit trail to the receiver over ZeroMQ/CURVE,\n"
                "filtered to the protected volumes and files. Stops on SIGTERM or SIGINT.");
  p.AddString("config", &config_path, "system configuration (text proto)");
  p.AddString("node", &node, "primary node name (default: the node with role PRIMARY)");
  p.Require("config");
  std::vector<std::string> rest = p.Parse(argc, argv);
  if (!rest.empty()) p.Fail(absl::StrCat("unexpected argument '", rest[0], "'"));
  absl::StatusOr<config::Config> cfg = config::Load(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "rdf-extractor: %s\n", std::string(cfg.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<const proto::NodeConfig*> n = config::SelectNode(*cfg, node, proto::PRIMARY);
  if (!n.ok()) {
    std::fprintf(stderr, "rdf-extractor: %s\n", std::string(n.status().message()).c_str());
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  extractor::ExtractorOptions o;
  o.config = &*cfg;
  o.node = (*n)->name();
  absl::StatusOr<std::unique_ptr<extractor::Extractor>> r = extractor::Extractor::Open(o);
  if (!r.ok()) {
    std::fprintf(stderr, "rdf-extractor: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  absl::Status s = (*r)->Run(&g_stop);
  if (!s.ok()) {
    std::fprintf(stderr, "rdf-extractor: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
