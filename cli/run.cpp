// The `funnel` command line (cli/cli.hpp). Each subcommand lives in cli/<name>.cpp and registers itself with
// FUNNEL_COMMAND.
#include <cstdio>
#include <exception>
#include <string>

#include "core/files.hpp"
#include "core/signals.hpp"
#include "cli/cli.hpp"
#include "cli/command.hpp"

namespace funnel::cli {

int run(int argc, char** argv) {
  // Messages name the program as it was called (funnel, or a user's own binary built on this library).
  std::string prog = argc > 0 && argv[0] && *argv[0] ? argv[0] : "funnel";
  if (auto slash = prog.rfind('/'); slash != std::string::npos) prog = prog.substr(slash + 1);
  const char* p = prog.c_str();
  funnel::ignore_sigpipe();  // a closed pipe is a write error (EPIPE) reported by the writer, not a silent death
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fprintf(argc < 2 ? stderr : stdout, "usage: %s <command> [options]\n\ncommands:\n", p);
    for (const Command* c : commands()) std::fprintf(argc < 2 ? stderr : stdout, "  %-10s %s\n", c->name, c->summary);
    return funnel::finish_stdout(argc < 2 ? 2 : 0);
  }
  const Command* cmd = find_command(argv[1]);
  if (!cmd) {
    std::fprintf(stderr, "%s: unknown command '%s' (run '%s --help')\n", p, argv[1], p);
    return 2;
  }
  try {
    return funnel::finish_stdout(cmd->run(argc - 1, argv + 1));
  } catch (const HelpRequested& h) {
    std::printf("usage: %s %s [flags]\n%s\n%s\n", p, cmd->name, cmd->summary, h.what());
    return funnel::finish_stdout(0);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s %s: %s\n", p, cmd->name, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s %s: error: %s\n", p, cmd->name, e.what());
    return funnel::finish_stdout(1);
  }
}

}  // namespace funnel::cli
