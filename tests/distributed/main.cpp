// Catch2 main for the distributed tests: every rank runs every test case in the same order (so the collectives
// match), MPI is initialised before the first and finalised after the last. Without mpirun it runs as one rank.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "distributed/comm.hpp"

int main(int argc, char** argv) {
  funnel::dist::world();
  const int rc = Catch::Session().run(argc, argv);
  if (rc != 0) return rc;  // no MPI_Finalize on failure: mpirun ends the job
  funnel::dist::finalize_world();
  return 0;
}
