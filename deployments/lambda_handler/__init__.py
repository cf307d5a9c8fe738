"""The serving function: validate a request, predict with onnxruntime, log every prediction.

Everything in this package ships in the Lambda function zip. It imports only the standard
library, numpy and onnxruntime (and boto3, which the Lambda runtime provides, when it writes
to S3 or Firehose); never pandas, scikit-learn, MLflow or Prefect.
"""
