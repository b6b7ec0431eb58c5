// funnel: the command-line entry point; everything else is in the funnel_cli library (cli/cli.hpp).
#include "cli/cli.hpp"

int main(int argc, char** argv) { return funnel::cli::run(argc, argv); }
