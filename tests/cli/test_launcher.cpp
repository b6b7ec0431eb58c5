// A build without the MPI layer, started by an MPI launcher as several processes: `funnel train` refuses (exit 2)
// instead of letting every process train alone and write the same outputs.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "cli/common.hpp"
#include "support/skip.hpp"
#include "train/strategy.hpp"

namespace {

// Sets (or, with nullopt, removes) an environment variable for the scope, and puts back what was there.
class EnvVar {
 public:
  EnvVar(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  }
  ~EnvVar() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("launcher_process_count reads the launcher's process count, 1 without one", "[cli][mpi]") {
  EnvVar pmi("PMI_SIZE", std::nullopt);
  {
    EnvVar ompi("OMPI_COMM_WORLD_SIZE", std::nullopt);
    CHECK(funnel::cli::launcher_process_count() == 1);
  }
  for (const auto& [text, expected] : std::vector<std::pair<std::string, int>>{
           {"4", 4}, {"1", 1}, {"0", 1}, {"-3", 1}, {"two", 1}, {"2x", 1}, {"", 1}}) {
    EnvVar ompi("OMPI_COMM_WORLD_SIZE", text);
    INFO("OMPI_COMM_WORLD_SIZE=" << text);
    CHECK(funnel::cli::launcher_process_count() == expected);
  }
  EnvVar ompi("OMPI_COMM_WORLD_SIZE", std::nullopt);
  EnvVar pmi3("PMI_SIZE", std::string("3"));
  CHECK(funnel::cli::launcher_process_count() == 3);
}

TEST_CASE("a build without MPI started as several processes refuses to train", "[cli][mpi]") {
  if (funnel::has_strategy("replicated"))
    FUNNEL_SKIP("this build has the MPI layer: a launcher's variables would start MPI (tests/distributed covers it)");
  const funnel::cli::Command* train = funnel::cli::find_command("train");
  REQUIRE(train);
  std::vector<std::string> text{"train", "--max-steps", "1", "--quiet"};
  std::vector<char*> argv;
  for (auto& s : text) argv.push_back(s.data());
  argv.push_back(nullptr);
  EnvVar ompi("OMPI_COMM_WORLD_SIZE", std::string("2"));
  try {
    train->run(static_cast<int>(text.size()), argv.data());
    FAIL("train ran under a launcher of 2 processes without MPI");
  } catch (const funnel::cli::UsageError& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains("one of 2 processes") &&
                             Catch::Matchers::Contains("built without MPI"));
  }
}
