#!/usr/bin/env python3
"""Lists functions in src/ longer than the project's limit (120 lines).

A function is a definition that opens at column 0 (the project's format puts
every namespace-scope function there) and closes at the next line holding a
lone "}" at column 0; member functions defined in a class body are not
counted. Exits 1 when one is over the limit.

    scripts/check_function_length.py [ROOT] [--limit N]
"""
import pathlib
import re
import sys

# The first line of a definition at namespace scope: column 0, not a
# namespace, type, template header, preprocessor line or comment.
HEAD = re.compile(r"^(?!namespace\b|class\b|struct\b|enum\b|union\b|extern\b|template\b|using\b|#|//|/\*|\}|\{)\S")


def long_functions(path, limit):
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    start = None  # first line of the function being read
    head = None   # first line of the declaration being read
    for number, line in enumerate(lines, 1):
        if start is None:
            if HEAD.match(line):
                head = number
            elif line and not line[0].isspace():
                head = None
            if head is not None and line.rstrip().endswith("{") and "(" in "".join(lines[head - 1:number]) \
                    and not line.rstrip().endswith("= {") and number - head < 6:
                start = head
                head = None
        elif line in ("}", "};") or line.startswith("}  //"):
            length = number - start + 1
            if length > limit:
                yield start, length, lines[start - 1].strip()
            start = None


def main(argv):
    limit = 120
    args = list(argv)
    if "--limit" in args:
        i = args.index("--limit")
        limit = int(args[i + 1])
        del args[i:i + 2]
    root = pathlib.Path(args[0] if args else ".")
    found = []
    for path in sorted((root / "src").rglob("*.cc")):
        for start, length, head in long_functions(path, limit):
            found.append(f"{path.relative_to(root)}:{start}: {length} lines: {head}")
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} function(s) over {limit} lines", file=sys.stderr)
        return 1
    print(f"no function in src/ over {limit} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
