// funnel: command-line entry point. Each subcommand lives in tools/cli/<name>.cpp and registers itself.
#include <cstdio>
#include <exception>
#include <string>

#include "core/files.hpp"
#include "core/signals.hpp"
#include "tools/cli/command.hpp"

int main(int argc, char** argv) {
  using namespace funnel::cli;
  funnel::ignore_sigpipe();  // a closed pipe is a write error (EPIPE) reported by the writer, not a silent death
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fprintf(argc < 2 ? stderr : stdout, "usage: funnel <command> [options]\n\ncommands:\n");
    for (const Command* c : commands()) std::fprintf(argc < 2 ? stderr : stdout, "  %-10s %s\n", c->name, c->summary);
    return funnel::finish_stdout(argc < 2 ? 2 : 0);
  }
  const Command* cmd = find_command(argv[1]);
  if (!cmd) {
    std::fprintf(stderr, "funnel: unknown command '%s' (run 'funnel --help')\n", argv[1]);
    return 2;
  }
  try {
    return funnel::finish_stdout(cmd->run(argc - 1, argv + 1));
  } catch (const HelpRequested& h) {
    std::printf("usage: funnel %s [flags]\n%s\n%s\n", cmd->name, cmd->summary, h.what());
    return funnel::finish_stdout(0);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "funnel %s: %s\n", cmd->name, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "funnel %s: error: %s\n", cmd->name, e.what());
    return funnel::finish_stdout(1);
  }
}
