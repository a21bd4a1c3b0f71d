#!/usr/bin/env python3
"""Counts the results of every test suite scripts/test ran and prints one summary line.

Sources:
  --meson NAME=TESTLOG[:GTEST_DIR]
      meson's testlog.json (one JSON object per line: name, result, command, starttime).
      A meson test whose executable wrote GoogleTest XML (into GTEST_DIR through GTEST_OUTPUT,
      or next to the build as {name}.xml for `protocol: 'gtest'` tests) counts per test case;
      any other meson test (e.g. the C ABI program) counts as one.
  --junit NAME=XML      a JUnit XML report (pytest --junitxml, or node --test's junit reporter):
                        one count per test case.
  --steps FILE          lines "STEP EXITCODE" written by scripts/test. A step that failed without
                        a counted test failure in the suite of the same name (a build, a crash,
                        pytest collecting nothing) counts as one failure.

Skipped, disabled and expected-failure tests count as failed: the project skips nothing.
Prints `tests: N passed, M failed` last and exits 1 if M > 0.
"""
import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET

MESON_PASS = {"OK"}


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.notes = []

    def fail(self, note):
        self.failed += 1
        self.notes.append(note)


def junit_cases(path):
    """Yields (name, ok, why) for each <testcase> of a JUnit XML file (gtest, pytest or node)."""
    root = ET.parse(path).getroot()
    parent = {child: p for p in root.iter() for child in p}
    for case in root.iter("testcase"):
        classname = case.get("classname")
        suite = parent.get(case)
        if classname == "test" and suite is not None and suite.tag == "testsuite":
            classname = suite.get("name")  # node's reporter: every classname is "test"
        name = ".".join(x for x in (classname, case.get("name")) if x)
        bad = None
        for child in case:
            if child.tag in ("failure", "error"):
                bad = child.tag
                break
            if child.tag == "skipped":
                bad = "skipped"
        if bad is None and case.get("status") == "notrun":
            bad = "not run (disabled)"
        if bad is None and case.get("result") in ("skipped", "suppressed"):
            bad = case.get("result")
        yield name, bad is None, bad


def gtest_xml_for(entry, build_dir, gtest_dir, used):
    """The GoogleTest XML a meson test wrote in this run, or None."""
    candidates = []
    name = entry.get("name", "")
    candidates.append(os.path.join(build_dir, name + ".xml"))  # protocol: 'gtest'
    cmd = entry.get("command") or []
    if gtest_dir and cmd:
        exe = os.path.basename(cmd[0])
        candidates.append(os.path.join(gtest_dir, exe + ".xml"))
        for i in range(1, 100):  # gtest avoids overwriting: exe_1.xml, exe_2.xml, ...
            candidates.append(os.path.join(gtest_dir, f"{exe}_{i}.xml"))
    start = float(entry.get("starttime") or 0)
    for c in candidates:
        if c in used or not os.path.isfile(c):
            continue
        if os.path.getmtime(c) + 1 < start:  # stale file from an earlier run
            continue
        used.add(c)
        return c
    return None


def count_meson(tally, testlog, gtest_dir):
    build_dir = os.path.dirname(os.path.dirname(os.path.abspath(testlog)))
    used = set()
    with open(testlog, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            name = entry.get("name", "?")
            result = entry.get("result", "?")
            xml = gtest_xml_for(entry, build_dir, gtest_dir, used)
            if xml:
                try:
                    cases = list(junit_cases(xml))
                except ET.ParseError as e:
                    tally.fail(f"{name}: unreadable GoogleTest XML {xml}: {e}")
                    continue
                case_failures = 0
                for case, ok, why in cases:
                    if ok:
                        tally.passed += 1
                    else:
                        case_failures += 1
                        tally.fail(f"{name}: {case}: {why}")
                if result not in MESON_PASS and case_failures == 0:
                    tally.fail(f"{name}: {result} (exit code {entry.get('returncode')})")
            elif result in MESON_PASS:
                tally.passed += 1
            else:
                tally.fail(f"{name}: {result} (exit code {entry.get('returncode')})")


def count_junit(tally, path):
    for case, ok, why in junit_cases(path):
        if ok:
            tally.passed += 1
        else:
            tally.fail(f"{case}: {why}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meson", action="append", default=[], metavar="NAME=TESTLOG[:GTEST_DIR]")
    ap.add_argument("--junit", action="append", default=[], metavar="NAME=XML")
    ap.add_argument("--steps", metavar="FILE")
    args = ap.parse_args()

    suites = {}  # name -> Tally, in order
    for spec in args.meson:
        name, _, rest = spec.partition("=")
        testlog, _, gtest_dir = rest.partition(":")
        t = suites.setdefault(name, Tally())
        if os.path.isfile(testlog):
            try:
                count_meson(t, testlog, gtest_dir or None)
            except (OSError, ValueError) as e:
                t.fail(f"cannot read {testlog}: {e}")
    for spec in args.junit:
        name, _, path = spec.partition("=")
        t = suites.setdefault(name, Tally())
        if os.path.isfile(path):
            try:
                count_junit(t, path)
            except (OSError, ET.ParseError) as e:
                t.fail(f"cannot read {path}: {e}")

    steps = Tally()
    if args.steps and os.path.isfile(args.steps):
        with open(args.steps, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) != 2:
                    continue
                step, code = parts[0], parts[1]
                if code == "0":
                    continue
                suite = suites.get(step)
                if suite is not None and suite.failed > 0:
                    continue  # its failures are already counted
                what = "did not run" if code == "skipped" else f"exited with {code}"
                (suite or steps).fail(f"step {step} {what}")

    passed = failed = 0
    for name, t in list(suites.items()) + [("steps", steps)]:
        if name != "steps" or t.failed:
            print(f"  {name}: {t.passed} passed, {t.failed} failed")
        for note in t.notes[:50]:
            print(f"    FAILED {note}")
        if len(t.notes) > 50:
            print(f"    ... and {len(t.notes) - 50} more")
        passed += t.passed
        failed += t.failed
    print(f"tests: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
