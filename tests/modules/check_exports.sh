#!/bin/sh
# Every module exports exactly one symbol, parley_module_entry
# (-fvisibility=hidden plus the version script of parley_add_module).
# usage: check_exports.sh MODULE.so...   (a file named *not_a_module* must export nothing)
set -eu
fail=0
for so in "$@"; do
  exported=$(nm -D --defined-only "$so" | awk '{print $NF}' | sort | tr '\n' ' ')
  case $so in
    *not_a_module*) want="" ;;
    *) want="parley_module_entry " ;;
  esac
  if [ "$exported" != "$want" ]; then
    echo "check_exports: $so exports '$exported', want '$want'" >&2
    fail=1
  fi
done
[ $fail -eq 0 ] && echo "check_exports: $# modules ok"
exit $fail
