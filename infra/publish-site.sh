#!/usr/bin/env bash
# Publishes the page of a deployed stack: builds the SPA, writes its config.json from the stack's outputs (the HTTP
# API, the WebSocket API, the ceiling), uploads both to the site bucket and invalidates CloudFront.
# Usage: infra/publish-site.sh STACK_NAME   (AWS CLI credentials for the stack's account; the Region is
# samconfig.toml's, where every stage is deployed)
set -euo pipefail
stack="${1:?usage: infra/publish-site.sh STACK_NAME}"
cd "$(dirname "$0")/.."
AWS_REGION="$(python3 -c 'import tomllib; print(tomllib.load(open("samconfig.toml", "rb"))["default"]["global"]["parameters"]["region"])')"
export AWS_REGION AWS_DEFAULT_REGION="$AWS_REGION"
output() {
    aws cloudformation describe-stacks --stack-name "$stack" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
api="$(output HttpApiUrl)" ws="$(output WebSocketUrl)" max="$(output CounterMax)"
bucket="$(output SiteBucketName)" distribution="$(output SiteDistributionId)"

(cd frontend && npm ci --no-audit --no-fund && npm run build)
python3 -c 'import json, sys; print(json.dumps({"apiUrl": sys.argv[1], "wsUrl": sys.argv[2], "counterMax": int(sys.argv[3])}))' \
    "$api" "$ws" "$max" > frontend/dist/config.json
# New assets first, then the page that names them; the old assets go only once CloudFront serves the new page
# (a page still cached may name them until then).
aws s3 sync frontend/dist "s3://${bucket}" --exclude index.html --exclude config.json \
    --cache-control "public, max-age=31536000, immutable"
aws s3 cp frontend/dist/index.html "s3://${bucket}/index.html" --cache-control "no-cache"
aws s3 cp frontend/dist/config.json "s3://${bucket}/config.json" --cache-control "no-cache"
invalidation="$(aws cloudfront create-invalidation --distribution-id "$distribution" --paths "/*" \
    --query Invalidation.Id --output text)"
aws cloudfront wait invalidation-completed --distribution-id "$distribution" --id "$invalidation"
aws s3 sync frontend/dist "s3://${bucket}" --delete --exclude index.html --exclude config.json \
    --cache-control "public, max-age=31536000, immutable"
echo "published: $(output SiteUrl)"
