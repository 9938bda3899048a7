# sluice_module(NAME SOURCES ... DEPS ...): one static library per module folder.
function(sluice_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${M_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
endfunction()

# sluice_test(NAME SOURCES ... DEPS ... [LABELS ...]): one GoogleTest binary registered with ctest.
# Its main (tests/common/gtest_main.cc) exits 77 when cases were skipped and none failed, shown by
# ctest as skipped (SKIP_RETURN_CODE). Not SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]": ctest lets
# that regex win over a failing exit code, so a binary with one skipped and one failed case
# would pass.
function(sluice_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/common/gtest_main.cc)
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest Threads::Threads)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
    SKIP_RETURN_CODE 77
    ENVIRONMENT "SLUICE_BIN_DIR=${PROJECT_BINARY_DIR}/bin;SLUICE_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
