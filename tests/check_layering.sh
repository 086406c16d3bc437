#!/bin/sh
# The dependency direction of ARCHITECTURE.md, checked on every CI run:
# xml/ and storage/ never include core/; modules include only include/parley/;
# core/ never includes a module; http/ (HTTP and WebSocket glue) includes
# none of core/, xml/, storage/.
top=${1:-.}
fail=0
for d in xml storage; do
  if grep -rnE '#include +[<"](\.\./)*core/' "$top/$d" 2>/dev/null; then
    echo "layering: $d/ includes core/"; fail=1
  fi
done
if grep -rnE '#include +[<"](\.\./)*(core|xml|storage)/' "$top/modules" 2>/dev/null; then
  echo "layering: a module includes core/, xml/ or storage/"; fail=1
fi
if grep -rnE '#include +[<"](\.\./)*modules/' "$top/core" "$top/xml" "$top/storage" "$top/http" 2>/dev/null; then
  echo "layering: the core includes a module"; fail=1
fi
if grep -rnE '#include +[<"](\.\./)*(core|xml|storage)/' "$top/http" 2>/dev/null; then
  echo "layering: http/ includes core/, xml/ or storage/"; fail=1
fi
if grep -rnE '#include +[<"](\.\./)*storage/' "$top/xml" 2>/dev/null || grep -rnE '#include +[<"](\.\./)*xml/' "$top/storage" 2>/dev/null; then
  echo "layering: xml/ and storage/ include each other"; fail=1
fi
[ $fail -eq 0 ] && echo "layering ok"
exit $fail
