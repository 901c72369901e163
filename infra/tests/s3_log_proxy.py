"""A reverse proxy in front of an S3 endpoint (LocalStack) that logs every request it forwards,
one JSON line each: method, bucket, key and query, as path-style S3 names them.

    python s3_log_proxy.py --upstream http://127.0.0.1:4566 --log requests.jsonl --port-file port

It listens on a free loopback port (written to --port-file) until killed. The least-privilege
check runs each job against its own proxy, so each log holds one job's requests.
"""

import argparse
import http.client
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def handler(upstream: urllib.parse.SplitResult, log, lock):
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def forward(self):
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.lstrip("/").split("/", 1)
            entry = {
                "method": self.command,
                "bucket": urllib.parse.unquote(parts[0]),
                "key": urllib.parse.unquote(parts[1]) if len(parts) > 1 else "",
                "query": dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True)),
                "copy_source": self.headers.get("x-amz-copy-source"),
            }
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            if self.command == "POST" and "delete" in entry["query"] and body:
                # DeleteObjects: the keys are in the body
                entry["keys"] = [k.decode() for k in re.findall(rb"<Key>([^<]*)</Key>", body)]
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            entry["status"] = resp.status
            with lock:
                log.write(json.dumps(entry) + "\n")
                log.flush()
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            conn.close()
            if self.command != "HEAD":
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # the job stopped reading (a cancelled read of a file it no longer needs);
                    # the request is logged all the same
                    pass

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    return Proxy


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    with open(args.log, "a") as log:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler(upstream, log, threading.Lock()))
        with open(args.port_file, "w") as f:
            f.write(str(server.server_address[1]))
        server.serve_forever()


if __name__ == "__main__":
    main()
