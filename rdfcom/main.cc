// rdfcom: the operator command (docs/rdfcom.md). This file only parses the
// command line and reports errors; the commands live in rdf_rdfcom.
#include <algorithm>
#include <csignal>
#include <set>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/cli.h"
#include "common/base/subprocess.h"
#include "common/config/config.h"
#include "common/events/log.h"
#include "common/initcopy/driver.h"
#include "common/json/proto.h"
#include "common/net/control_client.h"
#include "rdfcom/events_cmd.h"
#include "rdfcom/exceptions_cmd.h"
#include "rdfcom/keygen.h"
#include "rdfcom/nodes.h"
#include "rdfcom/status_cmd.h"
#include "rdfcom/takeover.h"
#include "rdfcom/validate.h"
#include "rdfcom/verify.h"
#include <unistd.h>

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void OnSignal(int) { g_interrupted = 1; }

constexpr char kDescription[] =
    "The rdf operator command.\n"
    "\n"
    "commands:\n"
    "  status [--json] [--watch]  state, positions, RTD and backlog of every process\n"
    "                            of both nodes (docs/status.md); --watch refreshes\n"
    "                            every second (with --json: one object per line)\n"
    "  start                     start the process set of both nodes (or --node)\n"
    "  stop [--drain] [--timeout S]\n"
    "                            stop the process set of both nodes (or --node);\n"
    "                            --drain first ships and applies everything written\n"
    "                            so far (waiting at most --timeout, default 600 s)\n"
    "  verify [--json]           compare every protected file of both nodes, record\n"
    "                            for record (run it drained: `stop --drain` first);\n"
    "                            exit 0 only when equal\n"
    "  update stop | update start\n"
    "                            on the backup: pause the updaters (the receiver\n"
    "                            keeps receiving) or resume them\n"
    "  keygen [--force]          make a CURVE key pair for every node (or --node),\n"
    "                            write each node's key_file (mode 0600) and put the\n"
    "                            public keys into the configuration file\n"
    "  keygen --operator NAME    make an operator's key pair (keys/operator-NAME.key)\n"
    "                            and add the operator to the configuration: only\n"
    "                            operator keys may change a node's state once\n"
    "                            operators are configured (docs/security.md)\n"
    "  events [--since TIME] [--min-severity S] [--number N] [--process P]\n"
    "         [--json] [--follow]\n"
    "                            print the EMS events of --node, or of every node,\n"
    "                            merged by time; --follow keeps printing new ones\n"
    "                            until interrupted (Ctrl-C)\n"
    "  takeover [--yes] [--json] [--force] [--timeout S]\n"
    "                            on the backup: refuse the old primary, apply\n"
    "                            everything received, undo the transactions whose\n"
    "                            outcome never arrived and print the report of what\n"
    "                            was lost (takeover/report.json, report.txt);\n"
    "                            asks for confirmation unless --yes; restartable;\n"
    "                            --force: even while catching up after initialize;\n"
    "                            --timeout: fail on an updater that makes no\n"
    "                            progress for S seconds (60)\n"
    "  initialize [--yes] [--json]\n"
    "                            online initial copy: copy every protected volume of\n"
    "                            the primary (the application may keep committing)\n"
    "                            to the backup, replacing the backup's data, and set\n"
    "                            where replication resumes; both process sets must\n"
    "                            be stopped (`stop`) and both data directories\n"
    "                            reachable here as files; asks unless --yes\n"
    "  validate                  check the configuration, each node's (or --node's)\n"
    "                            key file, peer keys, data_dir and listening ports;\n"
    "                            one ok/FAIL line per check; exit 1 if any fails\n"
    "  exceptions [--volume V] [--json]\n"
    "                            print the updaters' exception logs (errors 10 and\n"
    "                            11) of the backup node (or --node), oldest first\n"
    "\n"
    "Exit status: 0 done, 1 the command failed, 2 bad command line.";

struct Args {
  std::string config, node, since, min_severity, process;
  std::string key_file;       // every command that talks to a monitor
  std::string operator_name;  // keygen --operator
  uint64_t number = 0;
  bool force = false, json = false, follow = false, yes = false;
  std::string volume;  // exceptions
  bool watch = false, drain = false;  // status, stop
  uint64_t timeout_s = 0;             // stop --drain
};

// The options given on the command line, by name (for "takes only").
std::set<std::string> Given(const Args& a) {
  std::set<std::string> g;
  auto add = [&](bool set, const char* name) {
    if (set) g.insert(name);
  };
  add(!a.since.empty(), "since");
  add(!a.min_severity.empty(), "min-severity");
  add(!a.process.empty(), "process");
  add(a.number != 0, "number");
  add(a.force, "force");
  add(a.json, "json");
  add(a.follow, "follow");
  add(a.yes, "yes");
  add(!a.volume.empty(), "volume");
  add(a.watch, "watch");
  add(a.drain, "drain");
  add(a.timeout_s != 0, "timeout");
  return g;
}

// Fails (exit 2) when an option other than `allowed` was given.
void TakesOnly(const Args& a, rdf::cli::Parser& p, const std::string& command,
               const std::set<std::string>& allowed) {
  for (const std::string& o : Given(a)) {
    if (allowed.count(o) == 0) {
      p.Fail(absl::StrCat("--", o, " does not apply to '", command, "'"));
    }
  }
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "rdfcom: %s\n", std::string(s.message()).c_str());
  return 1;
}

int Keygen(const Args& a, rdf::cli::Parser& p) {
  if (!a.since.empty() || !a.min_severity.empty() || !a.process.empty() || a.number != 0 ||
      a.json || a.follow || !a.volume.empty()) {
    p.Fail("keygen takes only --force and --operator (and --config, --node)");
  }
  if (!a.operator_name.empty()) {
    if (!a.node.empty()) p.Fail("keygen --operator makes an operator's key, not a node's");
    absl::Status s = rdf::rdfcom::RunOperatorKeygen({a.config, "", a.force, a.operator_name},
                                                    std::cout);
    return s.ok() ? 0 : Fail(s);
  }
  absl::Status s = rdf::rdfcom::RunKeygen({a.config, a.node, a.force, ""}, std::cout);
  return s.ok() ? 0 : Fail(s);
}

// Builds the event filter from the command line; a bad value is a usage
// error (exit 2).
rdf::events::EventFilter EventFilterFrom(const Args& a, rdf::cli::Parser& p) {
  rdf::events::EventFilter f;
  if (!a.since.empty()) {
    absl::StatusOr<int64_t> since =
        rdf::events::ParseSince(a.since, absl::ToUnixMicros(absl::Now()));
    if (!since.ok()) p.Fail(absl::StrCat("--since: ", since.status().message()));
    f.since_us = *since;
  }
  if (!a.min_severity.empty()) {
    absl::StatusOr<rdf::proto::Severity> sev = rdf::events::ParseSeverity(a.min_severity);
    if (!sev.ok()) p.Fail(absl::StrCat("--min-severity: ", sev.status().message()));
    f.min_severity = *sev;
  }
  if (a.number > UINT32_MAX) p.Fail("--number: not an event number");
  f.number = static_cast<uint32_t>(a.number);
  f.process = a.process;
  return f;
}

int Events(const Args& a, rdf::cli::Parser& p) {
  if (a.force) p.Fail("--force applies to keygen only");
  if (!a.volume.empty()) p.Fail("--volume applies to exceptions only");
  rdf::rdfcom::EventsOptions o;
  o.filter = EventFilterFrom(a, p);
  o.json = a.json;
  absl::StatusOr<rdf::config::Config> cfg = rdf::config::Load(a.config);
  if (!cfg.ok()) return Fail(cfg.status());
  absl::StatusOr<std::vector<const rdf::proto::NodeConfig*>> nodes =
      rdf::rdfcom::SelectedNodes(*cfg, a.node);
  if (!nodes.ok()) return Fail(nodes.status());
  o.nodes = *nodes;
  if (a.follow) {
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    o.keep_following = [] { return g_interrupted == 0; };
  }
  absl::Status s = rdf::rdfcom::RunEvents(o, std::cout);
  return s.ok() ? 0 : Fail(s);
}

int Takeover(const Args& a, rdf::cli::Parser& p) {
  if (!a.since.empty() || !a.min_severity.empty() || !a.process.empty() || a.number != 0 ||
      a.follow || !a.volume.empty()) {
    p.Fail("takeover takes only --yes, --json, --force and --timeout (and --config, --node)");
  }
  absl::StatusOr<rdf::config::Config> cfg = rdf::config::Load(a.config);
  if (!cfg.ok()) return Fail(cfg.status());
  if (!a.yes) {
    if (!isatty(STDIN_FILENO)) {
      p.Fail("takeover needs --yes when not run from a terminal");
    }
    std::cout << "Take over on the backup? The old primary will be refused from now on,\n"
                 "and transactions whose outcome did not reach the backup are undone.\n"
                 "Type yes to continue: "
              << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "yes") {
      std::cerr << "rdfcom: takeover not started" << std::endl;
      return 1;
    }
  }
  rdf::rdfcom::TakeoverOptions o;
  o.config = &*cfg;
  o.node = a.node;
  o.bin_dir = rdf::ExecutableDir();
  o.progress = &std::cerr;
  o.force = a.force;
  if (a.timeout_s != 0) o.stall_timeout = absl::Seconds(a.timeout_s);
  absl::StatusOr<rdf::proto::TakeoverReport> r = rdf::rdfcom::RunTakeover(o);
  if (!r.ok()) return Fail(r.status());
  std::cout << (a.json ? rdf::json::MessageToJson(*r) + "\n" : rdf::rdfcom::TakeoverReportText(*r));
  return 0;
}

int Initialize(const Args& a, rdf::cli::Parser& p) {
  TakesOnly(a, p, "initialize", {"yes", "json"});
  if (!a.node.empty()) {
    p.Fail("initialize copies the configured primary to the configured backup; leave out --node");
  }
  absl::StatusOr<rdf::config::Config> cfg = rdf::config::Load(a.config);
  if (!cfg.ok()) return Fail(cfg.status());
  if (!a.yes) {
    if (!isatty(STDIN_FILENO)) {
      p.Fail("initialize needs --yes when not run from a terminal");
    }
    std::cout << "Initialize the backup from the primary? Everything the backup holds\n"
                 "(protected volumes, image trails, takeover state) is replaced.\n"
                 "Type yes to continue: "
              << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "yes") {
      std::cerr << "rdfcom: initialize not started" << std::endl;
      return 1;
    }
  }
  rdf::initcopy::DriverOptions o;
  o.config = &*cfg;
  o.progress = &std::cerr;
  // Test hooks (tests/process/initialize_test.py): smaller chunks and a
  // pause after each, so that a copy lasts long enough to break it.
  if (const char* v = getenv("RDF_INITIALIZE_CHUNK_BYTES"); v != nullptr && atoi(v) > 0) {
    o.chunk_bytes = static_cast<uint32_t>(atoi(v));
  }
  if (const char* v = getenv("RDF_INITIALIZE_CHUNK_PAUSE_MS"); v != nullptr && atoi(v) > 0) {
    o.chunk_pause = absl::Milliseconds(atoi(v));
  }
  absl::StatusOr<rdf::proto::InitialCopy> r = rdf::initcopy::Drive(o);
  if (!r.ok()) return Fail(r.status());
  std::cout << (a.json ? rdf::json::MessageToJson(*r) + "\n" : rdf::initcopy::SummaryText(*r));
  return 0;
}

int Validate(const Args& a, rdf::cli::Parser& p) {
  TakesOnly(a, p, "validate", {});
  return rdf::rdfcom::RunValidate({a.config, a.node}, std::cout).ok() ? 0 : 1;
}

int Exceptions(const Args& a, rdf::cli::Parser& p) {
  TakesOnly(a, p, "exceptions", {"volume", "json"});
  absl::StatusOr<rdf::config::Config> cfg = rdf::config::Load(a.config);
  if (!cfg.ok()) return Fail(cfg.status());
  rdf::rdfcom::ExceptionsOptions o;
  o.config = &*cfg;
  o.node = a.node;
  o.volume = a.volume;
  o.json = a.json;
  absl::StatusOr<rdf::rdfcom::ExceptionsResult> r =
      rdf::rdfcom::RunExceptions(o, std::cout, std::cerr);
  return r.ok() ? 0 : Fail(r.status());
}

// The nodes a start/stop acts on: --node, or both (primary first).
absl::StatusOr<std::vector<const rdf::proto::NodeConfig*>> ControlNodes(
    const rdf::config::Config& cfg, const std::string& node) {
  if (!node.empty()) return rdf::rdfcom::SelectedNodes(cfg, node);
  return std::vector<const rdf::proto::NodeConfig*>{cfg.NodeWithRole(rdf::proto::PRIMARY),
                                                    cfg.NodeWithRole(rdf::proto::BACKUP)};
}

// Fails fast (3 s) when a node's monitor does not answer, before a command
// that may legitimately take minutes (stopping waits for processes to end).
absl::Status CheckReachable(const rdf::config::Config& cfg,
                            const std::vector<const rdf::proto::NodeConfig*>& nodes) {
  rdf::proto::ControlRequest probe;
  probe.set_command(rdf::proto::ControlRequest::STATUS);
  for (const rdf::proto::NodeConfig* n : nodes) {
    absl::StatusOr<rdf::proto::ControlReply> r =
        rdf::control::CallMonitor(cfg, *n, probe, absl::Seconds(3));
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

int Status(const Args& a, rdf::cli::Parser& p) {
  TakesOnly(a, p, "status", {"json", "watch"});
  absl::StatusOr<rdf::config::Config> cfg = rdf::config::Load(a.config);
  if (!cfg.ok()) return Fail(cfg.status());
  rdf::rdfcom::StatusOptions o;
  o.json = a.json;
  if (a.watch) {
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    o.keep_watching = [] { return g_interrupted == 0; };
  }
  absl::Status s = rdf::rdfcom::RunStatus(
      *cfg, rdf::control::NetworkCall(*cfg, absl::Seconds(3)), o, std::cout);
  return s.ok() ? 0 : Fail(s);
}

int StartStop(const Args& a, rdf::cli::Parser& p, bool start) {
  if (start) {
    TakesOnly(a, p, "start", {});
  } else {
    TakesOnly(a, p, "stop", {"drain", "timeout"});
    if (a.timeout_s != 0 && !a.drain) p.Fail("--timeout applies to stop --drain");
  }
  absl::StatusOr<rdf::config::Config> cfg = rdf::config::Load(a.config);
  if (!cfg.ok()) return Fail(cfg.status());
  // Stopping waits for the processes to end (SIGTERM grace, then SIGKILL).
  rdf::control::ControlCall call = rdf::control::NetworkCall(*cfg, absl::Seconds(120));
  if (a.drain) {
    if (!a.node.empty()) p.Fail("stop --drain acts on both nodes; leave out --node");
    absl::Status up = CheckReachable(*cfg, {cfg->NodeWithRole(rdf::proto::PRIMARY),
                                            cfg->NodeWithRole(rdf::proto::BACKUP)});
    if (!up.ok()) return Fail(up);
    rdf::rdfcom::DrainOptions o;
    if (a.timeout_s != 0) o.timeout = absl::Seconds(static_cast<int64_t>(a.timeout_s));
    o.progress = &std::cerr;
    absl::StatusOr<uint64_t> asn = rdf::rdfcom::RunDrain(*cfg, call, o);
    if (!asn.ok()) return Fail(asn.status());
    std::cout << "drained through ASN " << *asn << "; both process sets stopped\n";
    return 0;
  }
  absl::StatusOr<std::vector<const rdf::proto::NodeConfig*>> nodes = ControlNodes(*cfg, a.node);
  if (!nodes.ok()) return Fail(nodes.status());
  if (start) std::reverse(nodes->begin(), nodes->end());  // the backup listens first
  if (absl::Status up = CheckReachable(*cfg, *nodes); !up.ok()) return Fail(up);
  absl::Status s = rdf::rdfcom::RunSimpleCommand(
      *cfg, call, *nodes,
      start ? rdf::proto::ControlRequest::START : rdf::proto::ControlRequest::STOP, std::cout);
  return s.ok() ? 0 : Fail(s);
}

int Verify(const Args& a, rdf::cli::Parser& p) {
  TakesOnly(a, p, "verify", {"json"});
  if (!a.node.empty()) p.Fail("verify compares both nodes; leave out --node");
  absl::StatusOr<rdf::config::Config> cfg = rdf::config::Load(a.config);
  if (!cfg.ok()) return Fail(cfg.status());
  rdf::rdfcom::VerifyOptions o;
  o.config = &*cfg;
  o.call = rdf::control::NetworkCall(*cfg, absl::Seconds(60));
  o.json = a.json;
  o.operator_name = rdf::control::OperatorName();
  absl::StatusOr<rdf::rdfcom::VerifySummary> r = rdf::rdfcom::RunVerify(o, std::cout);
  if (!r.ok()) return Fail(r.status());
  if (absl::Status logged = rdf::rdfcom::LogVerifyResult(o, *r); !logged.ok()) {
    std::cerr << "rdfcom: verify's event (" << (r->equal ? 981 : 980)
              << ") was not logged: " << logged.message() << std::endl;
  }
  // 3: no consistent cut, so neither equal nor different is known.
  return !r->consistent_cut ? 3 : r->equal ? 0 : 1;
}

int Update(const Args& a, rdf::cli::Parser& p, const std::string& what) {
  TakesOnly(a, p, "update", {});
  if (what != "stop" && what != "start") p.Fail("update takes 'stop' or 'start'");
  absl::StatusOr<rdf::config::Config> cfg = rdf::config::Load(a.config);
  if (!cfg.ok()) return Fail(cfg.status());
  absl::StatusOr<const rdf::proto::NodeConfig*> node =
      rdf::config::SelectNode(*cfg, a.node, rdf::proto::BACKUP);
  if (!node.ok()) return Fail(node.status());
  if (absl::Status up = CheckReachable(*cfg, {*node}); !up.ok()) return Fail(up);
  absl::Status s = rdf::rdfcom::RunSimpleCommand(
      *cfg, rdf::control::NetworkCall(*cfg, absl::Seconds(120)), {*node},
      what == "stop" ? rdf::proto::ControlRequest::UPDATE_STOP
                     : rdf::proto::ControlRequest::UPDATE_START,
      std::cout);
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  rdf::cli::Parser p("rdfcom --config FILE [--node NAME] COMMAND [options]", kDescription);
  p.AddString("config", &a.config, "system configuration (text proto)");
  p.AddString("node", &a.node, "node to act on (default: see each command)");
  p.AddBool("force", &a.force, "keygen: replace existing key files; takeover: take over even "
            "while volumes are inconsistent after initialize");
  p.AddString("key-file", &a.key_file,
              "the key file rdfcom authenticates with (an operator's, from keygen --operator; "
              "default: an operator key_file of the configuration, else the node's own)");
  p.AddString("operator", &a.operator_name, "keygen: make the key pair of this operator");
  p.AddString("since", &a.since,
              "events: from this time (RFC 3339) or this long ago (30s, 10m, 2h, 1d)");
  p.AddString("min-severity", &a.min_severity,
              "events: INFO, WARNING, ERROR or CRITICAL (default INFO)");
  p.AddUint("number", &a.number, "events: only this event number");
  p.AddString("process", &a.process, "events: only this process (e.g. updater-DATA01)");
  p.AddString("volume", &a.volume, "exceptions: only this volume ($DATA01 or DATA01)");
  p.AddBool("json", &a.json, "events: one JSON object per line; takeover: the report as JSON; "
            "exceptions: the stored lines; initialize: the state as JSON");
  p.AddBool("yes", &a.yes, "takeover, initialize: do not ask for confirmation");
  p.AddBool("follow", &a.follow, "events: keep printing new events until interrupted");
  p.AddBool("watch", &a.watch, "status: refresh every second until interrupted");
  p.AddBool("drain", &a.drain, "stop: ship and apply everything written so far, then stop");
  p.AddUint("timeout", &a.timeout_s, "stop --drain: give up after this many seconds (600); "
            "takeover: fail on an updater with no progress for this many seconds (60)");
  p.Require("config");
  std::vector<std::string> words = p.Parse(argc, argv);
  if (!a.operator_name.empty() && (words.empty() || words[0] != "keygen")) {
    p.Fail("--operator applies to keygen only");
  }
  rdf::control::SetClientKeyFile(a.key_file);
  if (words.size() == 2 && words[0] == "update") return Update(a, p, words[1]);
  if (words.size() == 1 && words[0] == "update") p.Fail("update takes 'stop' or 'start'");
  if (words.empty()) {
    p.Fail("missing command (status, start, stop, update, takeover, initialize, events, "
           "exceptions, validate, keygen)");
  }
  if (words.size() > 1) p.Fail(absl::StrCat("unexpected argument '", words[1], "'"));
  if (words[0] == "status") return Status(a, p);
  if (words[0] == "verify") return Verify(a, p);
  if (words[0] == "start") return StartStop(a, p, true);
  if (words[0] == "stop") return StartStop(a, p, false);
  if (words[0] == "keygen") return Keygen(a, p);
  if (words[0] == "events") return Events(a, p);
  if (words[0] == "takeover") return Takeover(a, p);
  if (words[0] == "initialize") return Initialize(a, p);
  if (words[0] == "validate") return Validate(a, p);
  if (words[0] == "exceptions") return Exceptions(a, p);
  p.Fail(absl::StrCat("unknown command '", words[0], "'"));
}
