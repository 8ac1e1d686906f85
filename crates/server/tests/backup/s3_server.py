"""A real S3-compatible server for the backup tests: moto's S3 in this process (installed by
scripts/test), with request authentication on, so every request bourse sends must carry a
valid AWS Signature V4. Creates a user allowed everything on S3, its access key and the bucket
`bourse-backups`, prints one JSON line {endpoint, access_key, secret_key}, then serves until
its standard input closes (or the process is killed: the server is a thread of it)."""
import json
import os
import sys

# The first four actions (the setup below) need no signature; every later one does.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "4"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
endpoint = f"http://{host}:{port}"
anonymous = dict(endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **anonymous)
iam.create_user(UserName="bourse")
iam.put_user_policy(UserName="bourse", PolicyName="s3", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="bourse")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"],
                  aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket="bourse-backups")
print(json.dumps({"endpoint": endpoint, "access_key": key["AccessKeyId"],
                  "secret_key": key["SecretAccessKey"]}), flush=True)
sys.stdin.read()
server.stop()
