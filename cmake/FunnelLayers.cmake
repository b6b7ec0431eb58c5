# The library as layers: one static library per folder, each linked only to the layers below it.
#
#   funnel_core      core/      graph, shapes, ids, the DSL, the thread pool, the op interface and registry
#   funnel_ops       ops/       one file per op (self-registering)
#   funnel_autodiff  autodiff/  executor, gradient check, gradient-flow analysis
#   funnel_opcheck   opcheck/   gradient-check examples of the ops (self-registering; only the check reads them)
#   funnel_models    models/    the model zoo (self-registering)
#   funnel_data      data/      readers, feature maps, datasets, synthetic data
#   funnel_train     train/     optimizers, checkpoints, metrics, the trainer and its loop
#   funnel_viz       viz/       DOT drawings of graphs and of gradient flow
#   funnel_serve     serving/   the Predictor (checkpoint -> predictions, thread-safe, hot swap) and the HTTP server
#   funnel_export    exporter/  ONNX export of a model's inference graph (Debian's libonnx-dev + libprotobuf-dev)
#   funnel           everything above (an INTERFACE target), what tools, tests, benches and users link
# and, defined where their folders are added (they need packages found later: MPI), two layers on top:
#   funnel_distributed  distributed/  MPI data parallelism (distributed/CMakeLists.txt, when FUNNEL_MPI)
#   funnel_commands     cli/          the command line's subcommands (tools/CMakeLists.txt); programs link the
#                                     INTERFACE target funnel_cli, which takes them whole-archive with `funnel`
#
# The same order is written down for the include check (scripts/check_layers.sh, the CTest test `layers/includes`),
# which fails on any #include that climbs. Layers that register things at static-init time (ops, op examples,
# models, data formats, optimizers) are linked whole-archive, so that no registration is dropped by the static
# linker.

# Links `dep` whole-archive. Every link of a whole-archive layer must name the feature, or CMake rejects the mixed
# link items; the installed package names the imported target (an export does not rename targets inside
# $<LINK_LIBRARY:...>).
function(funnel_link_whole_archive target scope dep)
  target_link_libraries(${target} ${scope} "$<BUILD_INTERFACE:$<LINK_LIBRARY:WHOLE_ARCHIVE,${dep}>>"
                                           "$<INSTALL_INTERFACE:$<LINK_LIBRARY:WHOLE_ARCHIVE,funnel::${dep}>>")
endfunction()

# Precompiled headers (FUNNEL_PCH, on by default): the third-party headers almost every file parses (xtensor through
# core/op.hpp, nlohmann/json, Catch2 in the tests) are compiled once per target instead of once per file, which
# roughly halves a cold build. Private to our own targets: nothing of it is installed or seen by users.
function(funnel_precompile target)
  if(NOT FUNNEL_PCH)
    return()
  endif()
  cmake_parse_arguments(P "JSON;CATCH" "REUSE" "" ${ARGN})
  if(P_REUSE)
    # The same headers and flags as `REUSE`'s: its precompiled header serves this target too (one PCH built
    # instead of one per target; GCC falls back to the plain headers if it ever does not match).
    target_precompile_headers(${target} REUSE_FROM ${P_REUSE})
    return()
  endif()
  set(headers <algorithm> <cstdint> <functional> <map> <memory> <string> <unordered_map> <vector>
              <xtensor/xarray.hpp>)
  if(P_JSON)
    list(APPEND headers <nlohmann/json.hpp>)
  endif()
  if(P_CATCH)
    list(APPEND headers <catch2/catch.hpp>)
  endif()
  target_precompile_headers(${target} PRIVATE ${headers})
endfunction()

# Library files whose file-local names clash with another file's of their layer: compiled one by one (FUNNEL_UNITY).
# data/stream_cache.cpp: included from a batch GCC takes it for a header and warns of its anonymous-namespace members.
set(FUNNEL_ALONE train/loop.cpp train/npy.cpp cli/flag_help.cpp data/stream_cache.cpp)

# funnel_layer(<name> DIRS <folder>... [WHOLE_ARCHIVE] [EXCLUDE <regex>] [DEPS <target>...])
# EXCLUDE drops matching sources (mains that live beside a layer's files).
function(funnel_layer name)
  cmake_parse_arguments(L "WHOLE_ARCHIVE" "EXCLUDE" "DIRS;DEPS" ${ARGN})
  set(srcs)
  foreach(dir ${L_DIRS})
    file(GLOB s CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${dir}/*.cpp)
    list(APPEND srcs ${s})
  endforeach()
  if(L_EXCLUDE)
    list(FILTER srcs EXCLUDE REGEX "${L_EXCLUDE}")
  endif()
  add_library(${name} STATIC ${srcs})
  # Installed headers keep their folders: include/funnel/core/graph.hpp is "core/graph.hpp" (or <funnel/core/...>).
  target_include_directories(${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
                                            $<INSTALL_INTERFACE:include/funnel> $<INSTALL_INTERFACE:include>)
  foreach(dep ${L_DEPS})
    get_target_property(dep_whole ${dep} FUNNEL_WHOLE_ARCHIVE)
    if(dep_whole)
      funnel_link_whole_archive(${name} PUBLIC ${dep})
    else()
      target_link_libraries(${name} PUBLIC ${dep})
    endif()
  endforeach()
  set_target_properties(${name} PROPERTIES FUNNEL_WHOLE_ARCHIVE ${L_WHOLE_ARCHIVE})
  if(FUNNEL_UNITY AND NOT name STREQUAL "funnel_ops" AND NOT name STREQUAL "funnel_opcheck")
    # Eight files per compiler run (FUNNEL_UNITY): the headers every file parses are parsed once per batch.
    # funnel_ops and funnel_opcheck keep one run per file (one op per file, each with file-local helpers and a
    # registrar under the same names), and so do the files of FUNNEL_ALONE.
    set_target_properties(${name} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE BATCH UNITY_BUILD_BATCH_SIZE 8)
    foreach(src ${FUNNEL_ALONE})
      if("${PROJECT_SOURCE_DIR}/${src}" IN_LIST srcs)
        set_source_files_properties(${PROJECT_SOURCE_DIR}/${src} TARGET_DIRECTORY ${name}
                                    PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
      endif()
    endforeach()
  endif()
  set_property(GLOBAL APPEND PROPERTY FUNNEL_LAYERS ${name})
  set_property(GLOBAL APPEND PROPERTY FUNNEL_LAYER_DIRS ${L_DIRS})
endfunction()

funnel_layer(funnel_core DIRS core)
target_link_libraries(funnel_core PUBLIC xtensor Boost::boost Threads::Threads)
if(FUNNEL_SANITIZE)  # whatever links a sanitized funnel needs the sanitizer runtimes
  target_link_options(funnel_core INTERFACE -fsanitize=address,undefined)
endif()

funnel_layer(funnel_ops DIRS ops WHOLE_ARCHIVE DEPS funnel_core)
target_include_directories(funnel_ops PUBLIC $<BUILD_INTERFACE:${CBLAS_INCLUDE_DIR}>)
target_link_libraries(funnel_ops PUBLIC BLAS::BLAS)
# The float64 checking path's gemms go through xtensor-blas (ops/gemm_f64.cpp); its package needs LAPACK too.
find_package(xtensor-blas REQUIRED)
target_link_libraries(funnel_ops PUBLIC xtensor-blas)

if(FUNNEL_ONEDNN)  # oneDNN float gemms (ops/gemm_backend.cpp); Debian's build runs on OpenMP, whose thread count we set
  find_library(DNNL_LIBRARY dnnl)
  find_path(DNNL_INCLUDE_DIR dnnl.h)
  find_package(OpenMP COMPONENTS CXX)
  if(DNNL_LIBRARY AND DNNL_INCLUDE_DIR AND OpenMP_CXX_FOUND)
    # Only the backend's own file needs to know (others ask onednn_available()), so every other file of every
    # layer keeps the same flags and can share one precompiled header.
    set_source_files_properties(${PROJECT_SOURCE_DIR}/ops/gemm_backend.cpp PROPERTIES COMPILE_DEFINITIONS
                                FUNNEL_HAVE_ONEDNN)
    target_include_directories(funnel_ops PUBLIC $<BUILD_INTERFACE:${DNNL_INCLUDE_DIR}>)
    target_link_libraries(funnel_ops PUBLIC ${DNNL_LIBRARY} ${OpenMP_CXX_LIBRARIES})
    message(STATUS "oneDNN: ${DNNL_LIBRARY} (float gemm default; FUNNEL_GEMM=openblas selects OpenBLAS)")
  else()
    message(STATUS "oneDNN not found: float gemms use OpenBLAS (apt-get install libdnnl-dev)")
  endif()
endif()

funnel_layer(funnel_autodiff DIRS autodiff DEPS funnel_ops)
funnel_layer(funnel_opcheck DIRS opcheck WHOLE_ARCHIVE DEPS funnel_autodiff)
funnel_layer(funnel_models DIRS models WHOLE_ARCHIVE DEPS funnel_autodiff)
target_link_libraries(funnel_models PUBLIC nlohmann_json::nlohmann_json)
funnel_layer(funnel_data DIRS data WHOLE_ARCHIVE DEPS funnel_core)
target_link_libraries(funnel_data PUBLIC nlohmann_json::nlohmann_json)
funnel_layer(funnel_train DIRS train WHOLE_ARCHIVE DEPS funnel_models funnel_data)
funnel_layer(funnel_viz DIRS viz DEPS funnel_autodiff)
funnel_layer(funnel_serve DIRS serving DEPS funnel_train)
# The HTTP server (serving/http_server.cpp) is built on Debian's cpp-httplib, a compiled library whose header must
# see the same feature macros the library was built with (its pkg-config Cflags): given to that one file only.
find_package(PkgConfig REQUIRED)
pkg_check_modules(CPP_HTTPLIB REQUIRED cpp-httplib)
set(FUNNEL_HTTPLIB_DEFINITIONS ${CPP_HTTPLIB_CFLAGS_OTHER})
list(TRANSFORM FUNNEL_HTTPLIB_DEFINITIONS REPLACE "^-D" "")
set_source_files_properties(${PROJECT_SOURCE_DIR}/serving/http_server.cpp TARGET_DIRECTORY funnel_serve PROPERTIES
                            COMPILE_DEFINITIONS "${FUNNEL_HTTPLIB_DEFINITIONS}" SKIP_UNITY_BUILD_INCLUSION ON
                            SKIP_PRECOMPILE_HEADERS ON)
target_link_libraries(funnel_serve PUBLIC cpp-httplib)
find_package(Protobuf REQUIRED)
find_package(ONNX REQUIRED)  # its onnx_proto target: the protobuf classes of onnx.proto (ONNX_NAMESPACE=onnx)
funnel_layer(funnel_export DIRS exporter DEPS funnel_train)
target_link_libraries(funnel_export PRIVATE onnx_proto)
set_property(GLOBAL APPEND PROPERTY FUNNEL_EXTRA_DEPENDENCIES "find_dependency(Protobuf)" "find_dependency(ONNX)")

funnel_precompile(funnel_core)
foreach(layer funnel_ops funnel_autodiff funnel_opcheck funnel_viz)
  funnel_precompile(${layer} REUSE funnel_core)
endforeach()
funnel_precompile(funnel_models JSON)
foreach(layer funnel_data funnel_train funnel_serve)
  funnel_precompile(${layer} REUSE funnel_models)
endforeach()

add_library(funnel INTERFACE)
get_property(FUNNEL_LAYER_TARGETS GLOBAL PROPERTY FUNNEL_LAYERS)
foreach(layer ${FUNNEL_LAYER_TARGETS})
  get_target_property(whole ${layer} FUNNEL_WHOLE_ARCHIVE)
  if(whole)
    funnel_link_whole_archive(funnel INTERFACE ${layer})
  else()
    target_link_libraries(funnel INTERFACE ${layer})
  endif()
endforeach()
add_library(funnel::funnel ALIAS funnel)
