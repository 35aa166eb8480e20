"""A real S3 API on loopback: moto's server mode (`python -m moto.server`) in a process of its own, and the
environment that points boto3 at it (AWS_ENDPOINT_URL and throw-away credentials)."""
import os
import subprocess
import sys
import time
import urllib.request

from farm_procs import free_ports

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "synthfarm-test", "AWS_SECRET_ACCESS_KEY": "synthfarm-test",
               "AWS_DEFAULT_REGION": "us-east-1"}


class S3Server:
    def __init__(self, timeout: float = 60):
        for _ in range(5):  # another process may take the port first: try another
            self.port = free_ports(1)
            self.endpoint = f"http://127.0.0.1:{self.port}"
            self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None and time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(self.endpoint, timeout=2).close()
                    self.env = {"AWS_ENDPOINT_URL": self.endpoint, **CREDENTIALS}
                    return
                except OSError:
                    time.sleep(0.2)
            self.stop()
        raise RuntimeError("moto's S3 server did not start")

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def environ(self) -> dict:
        return {**os.environ, **self.env}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
