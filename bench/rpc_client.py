#!/usr/bin/env python3
"""Submits pre-signed transactions one request at a time over one keep-alive HTTP connection
and prints the rate. The same client drives peerchain and litecoind, so that the comparison
measures the servers, not the clients.

usage: rpc_client.py HOST:PORT USER:PASSWORD METHOD HEX_FILE [--jsonrpc 1.0|2.0]
       rpc_client.py HOST:PORT USER:PASSWORD METHOD --no-params COUNT
The second form calls a method without parameters COUNT times: the ceiling that the client
and the HTTP stack leave to any method.
"""
import base64, http.client, json, sys, time


def submit(addr, credentials, method, param_lists, version="2.0"):
    """Sends one request per parameter list, in order, on one connection; returns the figures."""
    host, port = addr.rsplit(":", 1)
    auth = "Basic " + base64.b64encode(credentials.encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json", "Connection": "keep-alive"}
    connection = http.client.HTTPConnection(host, int(port), timeout=600)
    bodies = [json.dumps({"jsonrpc": version, "id": i, "method": method, "params": p})
              for i, p in enumerate(param_lists)]
    started = time.perf_counter()
    for body in bodies:
        connection.request("POST", "/", body, headers)
        answer = json.loads(connection.getresponse().read())
        if answer.get("error"):
            raise SystemExit(f"{method}: {answer['error']}")
    seconds = time.perf_counter() - started
    connection.close()
    return {"calls": len(bodies), "seconds": round(seconds, 3), "calls_per_second": round(len(bodies) / seconds),
            "via": "one request per call, one keep-alive connection"}


def main():
    addr, credentials, method, source = sys.argv[1:5]
    if source == "--no-params":
        print(json.dumps(submit(addr, credentials, method, [[]] * int(sys.argv[5]))))
        return
    version = sys.argv[6] if len(sys.argv) > 6 and sys.argv[5] == "--jsonrpc" else "2.0"
    hexes = [line.strip() for line in open(source) if line.strip()]
    print(json.dumps(submit(addr, credentials, method, [[h] for h in hexes], version)))


if __name__ == "__main__":
    main()
