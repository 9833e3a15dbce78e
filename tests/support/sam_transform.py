"""The template as CloudFormation receives it: `infra/template.yaml` through its transforms — AWS::LanguageExtensions
as far as this template needs it (below), then the SAM transform (the `aws-sam-translator` pinned in tests/tools) —
printed as JSON. The built functions' code is stood in for by S3 locations, as `sam package` writes them (inline
code stays inline); no AWS account is asked anything.

Of AWS::LanguageExtensions this does what the template relies on, before SAM reads it: each Fn::If whose condition
the parameters decide (Fn::Equals, Fn::Not, Fn::And, Fn::Or and Condition over parameters and literals) becomes its
branch, a branch that is AWS::NoValue takes its key or list item away, and an Fn::Split of a parameter becomes its
list (SAM reads the HTTP API's CORS origins only as a list). CloudFormation's transform resolves the other parameter
references too; SAM resolves those it reads itself, so the output differs from CloudFormation's only in references
CloudFormation resolves after the transforms anyway.

Usage: python3 tests/support/sam_transform.py infra/template.yaml [Name=Value ...]
"""

import json
import os
import sys

try:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse
except ImportError:
    sys.exit("aws-sam-translator is missing: run tests/tools/install.sh and put tests/tools/.venv/bin on PATH")

LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
NO_VALUE = {"Ref": "AWS::NoValue"}


class NoManagedPolicies:
    """The template names no managed policy by name, so none needs looking up in IAM."""

    def load(self):
        return {}


class Undecided(Exception):
    """A condition that depends on more than the parameters."""


def scalar(value, parameters):
    """A condition's operand as CloudFormation compares it: a string."""
    if isinstance(value, dict):
        if list(value) == ["Ref"] and value["Ref"] in parameters:
            return str(parameters[value["Ref"]])
        raise Undecided(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def decide(condition, conditions, parameters):
    """Whether a condition (a name or a condition function) holds, from the parameters alone."""
    if isinstance(condition, str):
        return decide(conditions[condition], conditions, parameters)
    if not isinstance(condition, dict) or len(condition) != 1:
        raise Undecided(condition)
    [(function, arguments)] = condition.items()
    if function == "Condition":
        return decide(arguments, conditions, parameters)
    if function == "Fn::Equals":
        return scalar(arguments[0], parameters) == scalar(arguments[1], parameters)
    if function == "Fn::Not":
        return not decide(arguments[0], conditions, parameters)
    if function == "Fn::And":
        return all(decide(argument, conditions, parameters) for argument in arguments)
    if function == "Fn::Or":
        return any(decide(argument, conditions, parameters) for argument in arguments)
    raise Undecided(condition)


def settle(value, conditions, parameters):
    """`value` with each decidable Fn::If replaced by its branch; AWS::NoValue where a branch takes the value away."""
    if isinstance(value, dict):
        if list(value) == ["Fn::If"]:
            name, when_true, when_false = value["Fn::If"]
            try:
                branch = when_true if decide(name, conditions, parameters) else when_false
            except Undecided:
                branches = [settle(side, conditions, parameters) for side in (when_true, when_false)]
                return {"Fn::If": [name, *branches]}
            return settle(branch, conditions, parameters)
        if list(value) == ["Fn::Split"]:
            delimiter, source = value["Fn::Split"]
            try:
                return scalar(source, parameters).split(delimiter)
            except Undecided:
                return value
        settled = {key: settle(item, conditions, parameters) for key, item in value.items()}
        return {key: item for key, item in settled.items() if item != NO_VALUE}
    if isinstance(value, list):
        settled = [settle(item, conditions, parameters) for item in value]
        return [item for item in settled if item != NO_VALUE]
    return value


def language_extensions(template, parameters):
    transforms = template.get("Transform", [])
    transforms = transforms if isinstance(transforms, list) else [transforms]
    if LANGUAGE_EXTENSIONS not in transforms:
        return template
    declared = template.get("Parameters", {})
    values = {name: parameter["Default"] for name, parameter in declared.items() if "Default" in parameter}
    values.update(parameters)
    conditions = template.get("Conditions", {})
    for section in ("Resources", "Outputs"):
        if section in template:
            template[section] = settle(template[section], conditions, values)
    template["Transform"] = [name for name in transforms if name != LANGUAGE_EXTENSIONS]
    return template


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # samconfig.toml's Region
    with open(sys.argv[1], encoding="utf-8") as source:
        template = yaml_parse(source.read())
    parameters = dict(argument.split("=", 1) for argument in sys.argv[2:])
    template = language_extensions(template, parameters)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function" and "InlineCode" not in resource["Properties"]:
            resource["Properties"]["CodeUri"] = "s3://acidizer-artifacts/function.zip"
    json.dump(transform(template, parameters, NoManagedPolicies()), sys.stdout, indent=1)


if __name__ == "__main__":
    main()
