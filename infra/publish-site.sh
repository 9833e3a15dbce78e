#!/usr/bin/env bash
# Publishes the page of a deployed stack: builds the SPA, writes its config.json from the stack's outputs (the HTTP
# API, the WebSocket API, the ceiling), uploads both to the site bucket and invalidates CloudFront. With
# --config-only it uploads only the files the stack's outputs decide: config.json, and the 404 CloudFront answers
# for a file the site does not have (errors/not-found.json, the API's own 404) — deploy.yml does so as soon as the
# stack is updated, so that the page already published calls the stage where it now answers.
# Usage: infra/publish-site.sh STACK_NAME [--config-only]   (AWS CLI credentials for the stack's account; the
# Region is samconfig.toml's, where every stage is deployed)
set -euo pipefail
stack="${1:?usage: infra/publish-site.sh STACK_NAME [--config-only]}"
mode="${2:-}"
case "$mode" in
    "" | --config-only) ;;
    *) echo "usage: infra/publish-site.sh STACK_NAME [--config-only]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
AWS_REGION="$(python3 -c 'import tomllib; print(tomllib.load(open("samconfig.toml", "rb"))["default"]["global"]["parameters"]["region"])')"
export AWS_REGION AWS_DEFAULT_REGION="$AWS_REGION"
output() {
    aws cloudformation describe-stacks --stack-name "$stack" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
api="$(output HttpApiUrl)" ws="$(output WebSocketUrl)" max="$(output CounterMax)"
bucket="$(output SiteBucketName)" distribution="$(output SiteDistributionId)"

# config.json and errors/not-found.json, written to the directory $1.
decided_files() {
    mkdir -p "$1/errors"
    python3 -c 'import json, sys; print(json.dumps({"apiUrl": sys.argv[1], "wsUrl": sys.argv[2], "counterMax": int(sys.argv[3])}))' \
        "$api" "$ws" "$max" > "$1/config.json"
    printf '%s' '{"type":"urn:acidizer:problem:not-found","title":"Not found","status":404,"detail":"there is nothing at this path"}' \
        > "$1/errors/not-found.json"
}
upload_decided_files() {
    aws s3 cp "$1/config.json" "s3://${bucket}/config.json" --cache-control "no-cache" \
        --content-type "application/json"
    aws s3 cp "$1/errors/not-found.json" "s3://${bucket}/errors/not-found.json" --cache-control "no-store" \
        --content-type "application/problem+json"
}

decided="$(mktemp -d)"
trap 'rm -rf "$decided"' EXIT
decided_files "$decided"
if [ "$mode" = --config-only ]; then
    upload_decided_files "$decided"
    aws cloudfront create-invalidation --distribution-id "$distribution" --paths /config.json /errors/not-found.json \
        --query Invalidation.Id --output text
    echo "config.json points at: ${api}"
    exit 0
fi
(cd frontend && npm ci --no-audit --no-fund && npm run build)
# New assets first, then the page that names them; the old assets go only once CloudFront serves the new page
# (a page still cached may name them until then).
aws s3 sync frontend/dist "s3://${bucket}" --exclude index.html --exclude config.json --exclude "errors/*" \
    --cache-control "public, max-age=31536000, immutable"
aws s3 cp frontend/dist/index.html "s3://${bucket}/index.html" --cache-control "no-cache"
upload_decided_files "$decided"
invalidation="$(aws cloudfront create-invalidation --distribution-id "$distribution" --paths "/*" \
    --query Invalidation.Id --output text)"
aws cloudfront wait invalidation-completed --distribution-id "$distribution" --id "$invalidation"
aws s3 sync frontend/dist "s3://${bucket}" --delete --exclude index.html --exclude config.json --exclude "errors/*" \
    --cache-control "public, max-age=31536000, immutable"
echo "published: $(output SiteUrl)"
