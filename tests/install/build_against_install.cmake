# Installs the build tree into a staging prefix, then configures, builds and runs a project that uses it through
# find_package(funnel). Run by CTest (tests/CMakeLists.txt):
#   cmake -DBUILD_DIR=<funnel build> -DSTAGE=<prefix> -DCONSUMER_SOURCE=<project> -DCONSUMER_BUILD=<dir>
#         -DCONSUMER_RUN=<program relative to CONSUMER_BUILD>[;args] [-DCXX=<compiler>] [-DBUILD_TYPE=...]
#         -P build_against_install.cmake
# STAGE and CONSUMER_BUILD are folders this script owns: it empties them first.
foreach(v BUILD_DIR STAGE CONSUMER_SOURCE CONSUMER_BUILD CONSUMER_RUN)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "build_against_install.cmake: -D${v}=... is required")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE ${STAGE} ${CONSUMER_BUILD})
run("install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${STAGE})
foreach(f include/funnel/core/graph.hpp include/funnel/ops/op.hpp lib/cmake/funnel/funnelConfig.cmake)
  if(NOT EXISTS ${STAGE}/${f})
    message(FATAL_ERROR "install: ${STAGE}/${f} is missing")
  endif()
endforeach()
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
