// The whole funnel command line, with every model funnel ships plus the ones linked into this binary
// (esmm_shared_bottom.cpp): `esmm-shared-bottom train --model esmm-shared-bottom ...`.
#include "cli/cli.hpp"

int main(int argc, char** argv) { return funnel::cli::run(argc, argv); }
