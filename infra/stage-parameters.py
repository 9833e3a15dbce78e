"""Every parameter of a stage's stack, for `sam deploy --parameter-overrides`: the values given, and the template's
default for each other one, one `Name="value"` a line. sam deploy keeps the value an earlier deployment set for a
parameter it is not given (UsePreviousValue); named every time, the stack is what the repository and the
environment's variables say, whatever was deployed by hand before, and a digest of these lines sees every value.
FunctionsDigest and TableDeletionProtection are left to the deploy, which sets them on each call.

Usage: python3 infra/stage-parameters.py TEMPLATE [Name=Value ...]
The environment variable STAGE_PARAMETERS may hold more Name=Value, separated by spaces or lines. A name the
template does not have, one given twice, one left to the deploy, or a value with a backslash (which sam deploy
would pass on doubled) is an error (exit 2).
"""

import os
import sys

from samtranslator.yaml_helper import yaml_parse

LEFT_TO_THE_DEPLOY = ("FunctionsDigest", "TableDeletionProtection")


def fail(message):
    print(f"stage-parameters: {message}", file=sys.stderr)
    sys.exit(2)


def text(value):
    """A default as CloudFormation reads it: a string, true and false in lower case."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def main(argv):
    if len(argv) < 2:
        fail("usage: stage-parameters.py TEMPLATE [Name=Value ...]")
    with open(argv[1], encoding="utf-8") as template:
        declared = yaml_parse(template.read()).get("Parameters") or {}
    given = {}
    for pair in argv[2:] + os.environ.get("STAGE_PARAMETERS", "").split():
        name, equals, value = pair.partition("=")
        if not equals or name not in declared:
            fail(f"{pair!r}: the template has no parameter {name!r}")
        if name in LEFT_TO_THE_DEPLOY:
            fail(f"{name} is set by the deploy itself")
        if name in given:
            fail(f"{name} is given twice")
        if "\\" in value:
            fail(f"{name}: a value with a backslash")
        given[name] = value
    for name, parameter in declared.items():
        if name in LEFT_TO_THE_DEPLOY:
            continue
        if name in given:
            value = given[name]
        elif "Default" in parameter:
            value = text(parameter["Default"])
        else:
            fail(f"{name} has no default: give it")
        quoted = value.replace('"', '\\"')
        print(f'{name}="{quoted}"')


if __name__ == "__main__":
    main(sys.argv)
