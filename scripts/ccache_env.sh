# Sourced by scripts/build, scripts/test and scripts/fuzz: compile through ccache when it is
# installed (scripts/setup installs it), with paths taken relative to the repository so a clone in
# another directory reuses the objects. Without ccache nothing changes.
if command -v ccache >/dev/null 2>&1; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_C_COMPILER_LAUNCHER=ccache
  CCACHE_BASEDIR="$(pwd)"
  export CCACHE_BASEDIR CCACHE_NOHASHDIR=1
fi
