#pragma once
// Fixture for the layering test: a distributed header that includes from the command line (a layer above it).
#include "cli/train_flags.hpp"
