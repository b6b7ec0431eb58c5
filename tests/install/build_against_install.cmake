# The user's route to an installed funnel, in two steps that CTest runs (tests/CMakeLists.txt, examples/*):
#   cmake -DBUILD_DIR=<funnel build> -DSTAGE=<prefix> -DINSTALL_ONLY=ON -P build_against_install.cmake
#     installs the build tree into the staging prefix once (the fixture every consumer test requires; one stage
#     instead of one per consumer keeps a sanitizer build's disk use down: a Debug stage is ~350 MB);
#   cmake -DSTAGE=<prefix> -DCONSUMER_SOURCE=<project> -DCONSUMER_BUILD=<dir>
#         -DCONSUMER_RUN=<program relative to CONSUMER_BUILD>[;args] [-DCXX=<compiler>] [-DBUILD_TYPE=...]
#         -P build_against_install.cmake
#     configures, builds and runs a project that finds the staged package through find_package(funnel).
# STAGE and CONSUMER_BUILD are folders this script owns: the step that fills one empties it first.
function(require)
  foreach(v ${ARGN})
    if(NOT DEFINED ${v})
      message(FATAL_ERROR "build_against_install.cmake: -D${v}=... is required")
    endif()
  endforeach()
endfunction()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}): ${ARGN}")
  endif()
endfunction()

require(STAGE)
if(INSTALL_ONLY)
  require(BUILD_DIR)
  file(REMOVE_RECURSE ${STAGE})
  run("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${STAGE})
  foreach(f include/funnel/core/graph.hpp include/funnel/ops/op.hpp lib/cmake/funnel/funnelConfig.cmake)
    if(NOT EXISTS ${STAGE}/${f})
      message(FATAL_ERROR "install: ${STAGE}/${f} is missing")
    endif()
  endforeach()
  return()
endif()

require(CONSUMER_SOURCE CONSUMER_BUILD CONSUMER_RUN)
if(NOT EXISTS ${STAGE}/lib/cmake/funnel/funnelConfig.cmake)
  message(FATAL_ERROR "no installed funnel in ${STAGE}: the test install/stage installs it (ctest runs it first)")
endif()
file(REMOVE_RECURSE ${CONSUMER_BUILD})
set(cfg -S ${CONSUMER_SOURCE} -B ${CONSUMER_BUILD} -DCMAKE_PREFIX_PATH=${STAGE})
if(CXX)
  list(APPEND cfg -DCMAKE_CXX_COMPILER=${CXX})
endif()
if(BUILD_TYPE)
  list(APPEND cfg -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
endif()
if(LAUNCHER)
  list(APPEND cfg -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
run("configure" ${CMAKE_COMMAND} ${cfg})
run("build" ${CMAKE_COMMAND} --build ${CONSUMER_BUILD})
list(POP_FRONT CONSUMER_RUN program)
run("run" ${CONSUMER_BUILD}/${program} ${CONSUMER_RUN})
