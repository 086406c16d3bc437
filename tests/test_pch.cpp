// The target that owns the unit tests' precompiled header (tests/CMakeLists.txt):
// nothing of its own to compile.
