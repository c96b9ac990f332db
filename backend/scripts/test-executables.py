#!/usr/bin/env python3
"""Prints the test executables of the workspace's release build, one per line, from the JSON messages
of `cargo test --release --workspace --no-run --message-format=json` on standard input.

  --package NAME   only the tests of this package (e.g. cryptera-backend)
  --target NAME    only the test target of this name (e.g. pkcs11_kek)
"""
import argparse
import json
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--package")
parser.add_argument("--target")
args = parser.parse_args()
for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    if message.get("reason") != "compiler-artifact" or not message.get("executable"):
        continue
    if not message.get("profile", {}).get("test"):
        continue
    package = message.get("package_id", "")
    if args.package and not (f"#{args.package}@" in package or package.startswith(f"{args.package} ")):
        continue
    if args.target and message.get("target", {}).get("name") != args.target:
        continue
    print(message["executable"])
