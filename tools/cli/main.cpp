// funnel: command-line entry point. Each subcommand lives in tools/cli/<name>.cpp and registers itself.
#include <cstdio>
#include <exception>
#include <string>

#include "tools/cli/command.hpp"

int main(int argc, char** argv) {
  using namespace funnel::cli;
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fprintf(argc < 2 ? stderr : stdout, "usage: funnel <command> [options]\n\ncommands:\n");
    for (const Command* c : commands()) std::fprintf(argc < 2 ? stderr : stdout, "  %-10s %s\n", c->name, c->summary);
    return argc < 2 ? 2 : 0;
  }
  const Command* cmd = find_command(argv[1]);
  if (!cmd) {
    std::fprintf(stderr, "funnel: unknown command '%s' (run 'funnel --help')\n", argv[1]);
    return 2;
  }
  try {
    return cmd->run(argc - 1, argv + 1);
  } catch (const HelpRequested& h) {
    std::printf("usage: funnel %s [flags]\n%s\n%s\n", cmd->name, cmd->summary, h.what());
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "funnel %s: %s\n", cmd->name, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "funnel %s: error: %s\n", cmd->name, e.what());
    return 1;
  }
}
