"""The AWS target: S3 bucket, IAM role, Lambda layer, function versions and alias, HTTP API (boto3 only)."""
