// FUNNEL_ISA: the SIMD kernels' instruction set, as a user picks it. A bad value stops the command with status 2
// naming the variable; every ISA the CPU runs trains to the same bits (the kernels' arithmetic is the same in each).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/simd.hpp"
#include "tools/cli_util.hpp"

namespace fs = std::filesystem;
using funnel::test::kFunnel;
using funnel::test::Run;
using funnel::test::run_shell;

namespace {
// Pooling, scatter, sparse and dense Adam all run; dim 18 leaves a masked tail in every register width.
const std::string kTrain = " train --data synthetic:rows=3000,fields=4,vocab=40,seed=3 --embedding-dim 18 --hidden 8,4"
                           " --pool mean --batch-size 256 --threads 2 --epochs 1";

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("FUNNEL_ISA: a bad value exits 2 naming it", "[cli][simd]") {
  Run bad = run_shell("FUNNEL_ISA=sse9 " + kFunnel + kTrain + " --max-steps 2 2>&1");
  CHECK(bad.code == 2);
  CHECK(bad.out.find("FUNNEL_ISA") != std::string::npos);
  CHECK(bad.out.find("sse9") != std::string::npos);
  if (!funnel::simd_isa_supported(funnel::SimdIsa::avx512)) {
    Run lacks = run_shell("FUNNEL_ISA=avx512 " + kFunnel + kTrain + " --max-steps 2 2>&1");
    CHECK(lacks.code == 2);
    CHECK(lacks.out.find("FUNNEL_ISA=avx512") != std::string::npos);
  }
}

TEST_CASE("FUNNEL_ISA: every ISA the CPU runs trains to the same parameters, bit for bit", "[cli][simd]") {
  const fs::path d = funnel::test::fresh_temp_dir("isa");
  std::vector<std::string> isas;
  for (auto isa : {funnel::SimdIsa::generic, funnel::SimdIsa::avx2, funnel::SimdIsa::avx512})
    if (funnel::simd_isa_supported(isa)) isas.push_back(funnel::simd_isa_name(isa));
  REQUIRE(isas.size() >= 1);
  for (const auto& isa : isas) {
    Run r = run_shell("FUNNEL_ISA=" + isa + " " + kFunnel + kTrain + " --save " + (d / isa).string() +
                      " --metrics-json " + (d / (isa + ".json")).string() + " 2>&1");
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(file_bytes(d / (isa + ".json")).find("\"isa\": \"" + isa + "\"") != std::string::npos);
  }
  if (isas.size() < 2) return;
  std::size_t compared = 0;
  for (const auto& e : fs::recursive_directory_iterator(d / isas[0])) {
    if (!e.is_regular_file() || e.path().extension() != ".npy") continue;
    const fs::path rel = fs::relative(e.path(), d / isas[0]);
    for (std::size_t i = 1; i < isas.size(); ++i) {
      INFO(rel.string() << ": " << isas[0] << " vs " << isas[i]);
      CHECK(file_bytes(e.path()) == file_bytes(d / isas[i] / rel));
    }
    ++compared;
  }
  CHECK(compared >= 3);  // the table, its Adam slots, the towers' weights
  fs::remove_all(d);
}
