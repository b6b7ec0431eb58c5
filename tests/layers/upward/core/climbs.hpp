#pragma once
// Fixture for the CTest test layers/catches_upward_include: a core header that includes from autodiff.
#include "autodiff/executor.hpp"
