"""The template as CloudFormation receives it: `infra/template.yaml` through the SAM transform (the
`aws-sam-translator` pinned in tests/tools), printed as JSON. The function code is stood in for by S3 locations, as
`sam package` writes them; no AWS account is asked anything.

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


class NoManagedPolicies:
    """The template names no managed policy by name, so none needs looking up in IAM."""

    def load(self):
        return {}


def main():
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    with open(sys.argv[1], encoding="utf-8") as source:
        template = yaml_parse(source.read())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://acidizer-artifacts/function.zip"
    parameters = dict(argument.split("=", 1) for argument in sys.argv[2:])
    json.dump(transform(template, parameters, NoManagedPolicies()), sys.stdout, indent=1)


if __name__ == "__main__":
    main()
